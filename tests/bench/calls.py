"""One stream's next call of each measured RPC: request, metadata and the state between calls."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from google.protobuf import field_mask_pb2

from usermgmt.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    user_pb2,
    user_service_pb2,
    user_service_pb2_grpc,
)

# Defined by the echo server: takes a GetUserRequest, answers a fixed GetUserResponse.
ECHO_METHOD = "/usermgmt.bench.Echo/Echo"
PASSWORD = "correct horse battery staple"

Call = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a stream calls as: an account (id, username, access token)."""

    user_id: str
    username: str
    token: str


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def make_call(
    rpc: str,
    channel: grpc.aio.Channel,
    identity: Identity,
    admin: Identity,
    timeout: float,
    *,
    wrong_password: bool = False,
) -> Call:
    """A function that makes the next call of ``rpc`` on ``channel`` as ``identity``.

    Register creates a new account each time; UpdateUser changes ``identity``'s display name
    (each stream has its own account, so updates never conflict); ListUsers walks every page as
    ``admin`` and starts over; Echo calls the bare echo server with GetUser's request.
    Authenticate signs in with the account's password, or a wrong one if ``wrong_password``.
    """
    users = user_service_pb2_grpc.UserServiceStub(channel)
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    counter = itertools.count()
    metadata = _bearer(identity.token)
    if rpc == "GetUser":
        request = user_service_pb2.GetUserRequest(user_id="me")
        return lambda: users.GetUser(request, metadata=metadata, timeout=timeout)
    if rpc == "Echo":
        echo = channel.unary_unary(
            ECHO_METHOD,
            request_serializer=user_service_pb2.GetUserRequest.SerializeToString,
            response_deserializer=user_service_pb2.GetUserResponse.FromString,
        )
        request = user_service_pb2.GetUserRequest(user_id="me")
        return lambda: echo(request, metadata=metadata, timeout=timeout)
    if rpc == "Authenticate":
        password = PASSWORD + " but wrong" if wrong_password else PASSWORD
        login = auth_service_pb2.AuthenticateRequest(login=identity.username, password=password)
        return lambda: auth.Authenticate(login, timeout=timeout)
    if rpc == "GetJwks":
        jwks = auth_service_pb2.GetJwksRequest()
        return lambda: auth.GetJwks(jwks, timeout=timeout)
    if rpc == "UpdateUser":
        mask = field_mask_pb2.FieldMask(paths=["display_name"])

        def update() -> Awaitable[object]:
            user = user_pb2.User(user_id=identity.user_id, display_name=f"bench {next(counter)}")
            request = user_service_pb2.UpdateUserRequest(user=user, update_mask=mask)
            return users.UpdateUser(request, metadata=metadata, timeout=timeout)

        return update
    if rpc == "Register":
        prefix = f"reg-{os.getpid()}-{uuid.uuid4().hex[:6]}"

        def register() -> Awaitable[object]:
            name = f"{prefix}-{next(counter)}"
            request = user_service_pb2.RegisterRequest(
                username=name,
                email=f"{name}@example.com",
                password=PASSWORD,
                display_name=name,
                request_id=str(uuid.uuid4()),
            )
            return users.Register(request, timeout=timeout)

        return register
    if rpc == "ListUsers":
        return _lister(users, _bearer(admin.token), timeout)
    raise ValueError(f"no calls defined for {rpc!r}")


def _lister(
    users: user_service_pb2_grpc.UserServiceStub,
    metadata: tuple[tuple[str, str], ...],
    timeout: float,
) -> Call:
    page_token = ""

    async def list_page() -> object:
        nonlocal page_token
        request = user_service_pb2.ListUsersRequest(page_size=50, page_token=page_token)
        response = await users.ListUsers(request, metadata=metadata, timeout=timeout)
        page_token = response.next_page_token
        return response

    return list_page
