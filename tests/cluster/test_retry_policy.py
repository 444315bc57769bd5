"""The client retry policy (usermgmt.retry_policy) on a real channel, against a stand-in
server that answers UNAVAILABLE a chosen number of times: calls safe to repeat are retried up
to the attempt limit, other calls never."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from usermgmt.retry_policy import MAX_ATTEMPTS, RETRIED_METHODS, channel_options, service_config
from usermgmt.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    probe_service_pb2,
    user_pb2,
    user_service_pb2,
    user_service_pb2_grpc,
)


class Unavailable:
    """Fails the first ``failures[method]`` attempts of each method with UNAVAILABLE."""

    def __init__(self) -> None:
        self.failures: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()

    async def attempt(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.attempts[method] += 1
        if self.attempts[method] <= self.failures[method]:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")


class Users(user_service_pb2_grpc.UserServiceServicer):
    def __init__(self, unavailable: Unavailable) -> None:
        self._unavailable = unavailable

    async def Register(  # noqa: N802
        self, request: user_service_pb2.RegisterRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.RegisterResponse:
        await self._unavailable.attempt("Register", context)
        return user_service_pb2.RegisterResponse(user=user_pb2.User(username=request.username))

    async def VerifyEmail(  # noqa: N802
        self, request: user_service_pb2.VerifyEmailRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.VerifyEmailResponse:
        await self._unavailable.attempt("VerifyEmail", context)
        return user_service_pb2.VerifyEmailResponse()


class Auth(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, unavailable: Unavailable) -> None:
        self._unavailable = unavailable

    async def RefreshToken(  # noqa: N802
        self, request: auth_service_pb2.RefreshTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_service_pb2.RefreshTokenResponse:
        await self._unavailable.attempt("RefreshToken", context)
        return auth_service_pb2.RefreshTokenResponse()


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[Unavailable, grpc.aio.Channel]]:
    unavailable = Unavailable()
    server = grpc.aio.server()
    user_service_pb2_grpc.add_UserServiceServicer_to_server(Users(unavailable), server)
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(Auth(unavailable), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=channel_options()
        ) as channel:
            yield unavailable, channel
    finally:
        await server.stop(0)


async def test_a_safe_call_is_retried_until_it_succeeds(
    stand_in: tuple[Unavailable, grpc.aio.Channel],
) -> None:
    unavailable, channel = stand_in
    unavailable.failures["Register"] = MAX_ATTEMPTS - 1
    response = await user_service_pb2_grpc.UserServiceStub(channel).Register(
        user_service_pb2.RegisterRequest(username="alice", request_id="r-1"), timeout=10
    )
    assert response.user.username == "alice"
    assert unavailable.attempts["Register"] == MAX_ATTEMPTS


async def test_retries_stop_at_the_attempt_limit(
    stand_in: tuple[Unavailable, grpc.aio.Channel],
) -> None:
    unavailable, channel = stand_in
    unavailable.failures["Register"] = MAX_ATTEMPTS
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await user_service_pb2_grpc.UserServiceStub(channel).Register(
            user_service_pb2.RegisterRequest(username="alice", request_id="r-1"), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert unavailable.attempts["Register"] == MAX_ATTEMPTS


async def test_calls_unsafe_to_repeat_are_not_retried(
    stand_in: tuple[Unavailable, grpc.aio.Channel],
) -> None:
    unavailable, channel = stand_in
    unavailable.failures.update({"RefreshToken": 1, "VerifyEmail": 1})
    for call in (
        auth_service_pb2_grpc.AuthServiceStub(channel).RefreshToken(
            auth_service_pb2.RefreshTokenRequest(refresh_token="t"), timeout=10
        ),
        user_service_pb2_grpc.UserServiceStub(channel).VerifyEmail(
            user_service_pb2.VerifyEmailRequest(login="alice", code="123456"), timeout=10
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert unavailable.attempts == Counter({"RefreshToken": 1, "VerifyEmail": 1})


def test_the_policy_names_only_methods_that_exist() -> None:
    services = {
        file.DESCRIPTOR.services_by_name[name].full_name: file.DESCRIPTOR.services_by_name[name]
        for file, name in (
            (user_service_pb2, "UserService"),
            (auth_service_pb2, "AuthService"),
            (probe_service_pb2, "ProbeService"),
        )
    }
    for service, methods in RETRIED_METHODS.items():
        assert set(methods) <= set(services[service].methods_by_name), service
    names = service_config()["methodConfig"][0]["name"]
    assert len(names) == sum(len(m) for m in RETRIED_METHODS.values())


def test_the_readme_shows_the_policy_clients_get() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Client retry policy", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block is not None
    assert json.loads(block.group(1)) == service_config()
