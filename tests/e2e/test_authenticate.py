"""Authenticate: tokens, identical failures, dummy hashing and rehash on login."""

from __future__ import annotations

import statistics
import time

import grpc
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from google.protobuf import field_mask_pb2

from tests.e2e.harness import (
    Api,
    RunningServer,
    bearer,
    expect_error,
    running_server,
    scan_table,
    unique,
)
from usermgmt.v1 import auth_service_pb2, user_pb2, user_service_pb2


def _public_key(server: RunningServer):  # type: ignore[no-untyped-def]
    pem = server.settings.jwt_private_key
    assert pem is not None
    return load_pem_private_key(pem.encode(), password=None).public_key()


async def test_authenticate_by_username_or_email_issues_a_verifiable_token(
    api: Api, server: RunningServer
) -> None:
    registered = await api.register()
    user = registered.user
    for login in (user.username, user.username.upper(), user.email, user.email.upper()):
        response = await api.auth.Authenticate(
            auth_service_pb2.AuthenticateRequest(login=login, password="correct horse battery")
        )
        assert response.token_type == "Bearer"
        assert response.expires_in == 900
        assert response.user == user
    header = jwt.get_unverified_header(response.access_token)
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt" and header["kid"]
    claims = jwt.decode(
        response.access_token,
        _public_key(server),
        algorithms=["ES256"],
        audience="usermgmt",
        issuer="usermgmt",
    )
    assert claims["sub"] == user.user_id
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"] and claims["roles"] == []


async def test_unknown_login_and_wrong_password_fail_identically(api: Api) -> None:
    registered = await api.register()
    outcomes = []
    for login, password in (
        (registered.user.username, "wrong password here"),
        (unique("ghost"), "wrong password here"),
        (f"{unique('ghost')}@example.com", "wrong password here"),
    ):
        try:
            await api.auth.Authenticate(
                auth_service_pb2.AuthenticateRequest(login=login, password=password)
            )
        except grpc.aio.AioRpcError as error:
            outcomes.append((error.code(), error.details(), error.trailing_metadata()))
    assert len(outcomes) == 3
    assert outcomes[0][0] == grpc.StatusCode.UNAUTHENTICATED
    assert outcomes[0] == outcomes[1] == outcomes[2]


async def test_disabled_account_fails_like_a_wrong_password(api: Api, admin_token: str) -> None:
    registered = await api.register()
    await api.users.UpdateUser(
        user_service_pb2.UpdateUserRequest(
            user=user_pb2.User(user_id=registered.user.user_id, state=user_pb2.USER_STATE_DISABLED),
            update_mask=field_mask_pb2.FieldMask(paths=["state"]),
        ),
        metadata=bearer(admin_token),
    )
    disabled = await expect_error(api.login(registered.user.username))
    wrong = await expect_error(api.login(registered.user.username, "not the password"))
    assert disabled == wrong
    assert disabled.reason == "INVALID_CREDENTIALS"


async def test_unknown_login_costs_one_hash_like_a_known_one(moto_endpoint: str) -> None:
    # OWASP parameters so that hashing, not storage, dominates each call.
    async with (
        running_server(
            moto_endpoint, USERMGMT_ARGON2_TIME_COST="2", USERMGMT_ARGON2_MEMORY_KIB="19456"
        ) as server,
        server.channel() as channel,
    ):
        api = Api(channel)
        registered = await api.register()
        known, unknown = [], []
        for _ in range(15):
            for login, samples in ((registered.user.username, known), (unique("ghost"), unknown)):
                started = time.perf_counter()
                await expect_error(api.login(login, "wrong password here"))
                samples.append(time.perf_counter() - started)
        ratio = statistics.median(unknown) / statistics.median(known)
        assert 0.7 < ratio < 1.3, f"unknown/known median ratio {ratio:.2f}"


async def test_login_rehashes_when_parameters_change(moto_endpoint: str) -> None:
    async with running_server(moto_endpoint) as first, first.channel() as channel:
        username = unique()
        await Api(channel).register(username)
        table = first.settings.table_name
    before = [i for i in await scan_table(moto_endpoint, table) if i.get("username") == username]
    assert "m=1024,t=1,p=1" in str(before[0]["password_hash"])
    async with (
        running_server(moto_endpoint, table, create=False, USERMGMT_ARGON2_TIME_COST="2") as second,
        second.channel() as channel,
    ):
        await Api(channel).login(username)
        await Api(channel).login(username)
    after = [i for i in await scan_table(moto_endpoint, table) if i.get("username") == username]
    assert "m=1024,t=2,p=1" in str(after[0]["password_hash"])
    assert after[0]["version"] == before[0]["version"], "a rehash is not a visible change"
