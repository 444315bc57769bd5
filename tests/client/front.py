"""A gRPC front that refuses the first calls it gets and forwards the rest to a real server,
counting every attempt: a stand-in for an instance that is briefly unavailable."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

# Metadata the front passes on (the rest is the transport's own).
_FORWARDED = ("authorization", "x-forwarded-for")


class RefusingFront(grpc.GenericRpcHandler):
    """Answers the first ``refusals`` calls with ``code``, forwards the others upstream.

    ``attempts`` counts calls per method; ``previous_attempts`` keeps the
    ``grpc-previous-rpc-attempts`` header gRPC adds to each retry.
    """

    def __init__(
        self,
        upstream: grpc.aio.Channel,
        refusals: int,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
    ) -> None:
        self._upstream = upstream
        self.refusals = refusals
        self.code = code
        self.attempts: Counter[str] = Counter()
        self.previous_attempts: list[str] = []

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        metadata = tuple(handler_call_details.invocation_metadata or ())

        async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            self.attempts[method] += 1
            self.previous_attempts += [
                str(value) for key, value in metadata if key == "grpc-previous-rpc-attempts"
            ]
            if self.refusals > 0:
                self.refusals -= 1
                await context.abort(self.code, "the front refuses this attempt")
            forwarded = tuple((key, value) for key, value in metadata if key in _FORWARDED)
            try:
                return await self._upstream.unary_unary(method)(request, metadata=forwarded)
            except grpc.aio.AioRpcError as error:
                trailing = tuple(error.trailing_metadata() or ())
                await context.abort(error.code(), error.details() or "", trailing)
                raise

        # No (de)serializers: the front passes the bytes through untouched.
        return grpc.unary_unary_rpc_method_handler(handle)


@asynccontextmanager
async def refusing_front(
    upstream_address: str, refusals: int, **options: Any
) -> AsyncIterator[tuple[RefusingFront, str]]:
    """Run a ``RefusingFront`` for ``upstream_address``; yields it and its address."""
    async with grpc.aio.insecure_channel(upstream_address) as upstream:
        front = RefusingFront(upstream, refusals, **options)
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((front,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            yield front, f"127.0.0.1:{port}"
        finally:
            await server.stop(None)
