"""The authorization matrix: anonymous, self, another user and an administrator x every RPC."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest
from google.protobuf import field_mask_pb2

from tests.e2e.harness import Api, bearer, unique
from usermgmt.v1 import auth_service_pb2, user_pb2, user_service_pb2

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED

Call = Callable[[Api, str, tuple[tuple[str, str], ...]], Awaitable[object]]


def _get(api: Api, target: str, metadata: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    return api.users.GetUser(user_service_pb2.GetUserRequest(user_id=target), metadata=metadata)


def _update(api: Api, target: str, metadata: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    request = user_service_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=target, display_name="changed"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
    )
    return api.users.UpdateUser(request, metadata=metadata)


def _delete(api: Api, target: str, metadata: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    return api.users.DeleteUser(
        user_service_pb2.DeleteUserRequest(user_id=target), metadata=metadata
    )


def _list(api: Api, target: str, metadata: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    return api.users.ListUsers(user_service_pb2.ListUsersRequest(page_size=1), metadata=metadata)


def _register(api: Api, target: str, metadata: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    name = unique()
    request = user_service_pb2.RegisterRequest(
        username=name, email=f"{name}@example.com", password="correct horse battery"
    )
    return api.users.Register(request, metadata=metadata)


def _authenticate(
    api: Api, target: str, metadata: tuple[tuple[str, str], ...]
) -> Awaitable[object]:
    request = auth_service_pb2.AuthenticateRequest(login=target, password="correct horse battery")
    return api.auth.Authenticate(request, metadata=metadata)


# caller → expected status, for each RPC. "self" targets the caller's own account; "other"
# targets someone else's; "admin" targets someone else's with an administrator's token.
MATRIX: dict[str, tuple[Call, dict[str, grpc.StatusCode]]] = {
    "GetUser": (_get, {"anonymous": UNAUTHENTICATED, "self": OK, "other": DENIED, "admin": OK}),
    "UpdateUser": (
        _update,
        {"anonymous": UNAUTHENTICATED, "self": OK, "other": DENIED, "admin": OK},
    ),
    "DeleteUser": (
        _delete,
        {"anonymous": UNAUTHENTICATED, "self": OK, "other": DENIED, "admin": OK},
    ),
    "ListUsers": (
        _list,
        {"anonymous": UNAUTHENTICATED, "self": DENIED, "other": DENIED, "admin": OK},
    ),
    "Register": (_register, {"anonymous": OK, "self": OK, "other": OK, "admin": OK}),
    "Authenticate": (_authenticate, {"anonymous": OK, "self": OK, "other": OK, "admin": OK}),
}
CASES = [(rpc, caller) for rpc, (_, expected) in MATRIX.items() for caller in expected]


@pytest.mark.parametrize(("rpc", "caller"), CASES)
async def test_authorization_matrix(api: Api, admin_token: str, rpc: str, caller: str) -> None:
    call, expected = MATRIX[rpc]
    me, my_token = await api.new_user_with_token()
    victim = await api.register()
    if caller == "anonymous":
        metadata: tuple[tuple[str, str], ...] = ()
        target = victim.user.username if rpc == "Authenticate" else victim.user.user_id
    elif caller == "self":
        metadata = bearer(my_token)
        target = me.user.username if rpc == "Authenticate" else me.user.user_id
    elif caller == "other":
        metadata = bearer(my_token)
        target = victim.user.username if rpc == "Authenticate" else victim.user.user_id
    else:
        metadata = bearer(admin_token)
        target = victim.user.username if rpc == "Authenticate" else victim.user.user_id
    try:
        await call(api, target, metadata)
        outcome = OK
    except grpc.aio.AioRpcError as error:
        outcome = error.code()
    assert outcome == expected[caller]


@pytest.mark.parametrize(
    "metadata",
    [
        (("authorization", "Bearer not-a-jwt"),),
        (("authorization", "Basic dXNlcjpwYXNz"),),
        (("authorization", "Bearer "),),
        (("authorization", "Bearer a"), ("authorization", "Bearer b")),
    ],
)
async def test_bad_credentials_are_unauthenticated(
    api: Api, metadata: tuple[tuple[str, str], ...]
) -> None:
    try:
        await _get(api, "me", metadata)
    except grpc.aio.AioRpcError as error:
        assert error.code() == UNAUTHENTICATED
    else:
        raise AssertionError("call succeeded")


async def test_token_of_another_signing_key_is_rejected(api: Api, server) -> None:  # type: ignore[no-untyped-def]
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    _, token = await api.new_user_with_token()
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(
        {**claims, "roles": ["admin"], "exp": int(time.time()) + 600},
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
        headers={"kid": header["kid"], "typ": "at+jwt"},
    )
    try:
        await _list(api, "", bearer(forged))
    except grpc.aio.AioRpcError as error:
        assert error.code() == UNAUTHENTICATED
    else:
        raise AssertionError("forged token accepted")
