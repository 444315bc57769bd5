"""A bare grpc.aio server, the floor of a GetUser call: one unary method that takes a
GetUserRequest and answers a fixed GetUserResponse of a typical account, with no interceptor,
no authentication and no storage. Run as ``python -m tests.bench.echo``; prints
``echo listening on HOST:PORT`` and serves until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime

import grpc

from tests.bench.calls import ECHO_METHOD
from usermgmt.v1 import user_service_pb2
from usermgmt_server.api.convert import user_to_proto
from usermgmt_server.domain.accounts import new_account

BANNER = "echo listening on"


def typical_response() -> user_service_pb2.GetUserResponse:
    """A GetUserResponse shaped like those of the seeded accounts."""
    name = f"bench-00000-{uuid.uuid4().hex[:6]}"
    user = new_account(
        user_id=str(uuid.uuid4()),
        now=datetime.now(UTC),
        username=name,
        email=f"{name}@example.com",
        display_name=name,
        roles=(),
        password_hash="",
        email_verified=True,
    )
    return user_service_pb2.GetUserResponse(user=user_to_proto(user))


async def serve() -> None:
    """Serve the echo method on a free loopback port until told to stop."""
    response = typical_response()

    async def echo(
        request: user_service_pb2.GetUserRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.GetUserResponse:
        return response

    service, method = ECHO_METHOD.strip("/").split("/")
    handler = grpc.method_handlers_generic_handler(
        service,
        {
            method: grpc.unary_unary_rpc_method_handler(
                echo,
                request_deserializer=user_service_pb2.GetUserRequest.FromString,
                response_serializer=user_service_pb2.GetUserResponse.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"{BANNER} 127.0.0.1:{port}", flush=True)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(serve())
