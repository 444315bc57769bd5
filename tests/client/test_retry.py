"""The channel retries UNAVAILABLE by its service-config policy, and nothing else."""

from __future__ import annotations

import asyncio
import json
import socket

import grpc
import pytest

from tests.client.front import refusing_front
from tests.client.support import signed_in
from tests.e2e.harness import RunningServer, TcpProxy
from usermgmt import (
    InternalError,
    Keepalive,
    RetryPolicy,
    Session,
    Unavailable,
    UsermgmtClient,
    retry_policy,
)
from usermgmt._channel import channel_options

READY = "/usermgmt.v1.ProbeService/Ready"
GET_USER = "/usermgmt.v1.UserService/GetUser"
FAST = RetryPolicy(max_attempts=5, initial_backoff=0.05, max_backoff=0.2)


def test_service_config_carries_the_retry_policy() -> None:
    options = dict(channel_options(RetryPolicy(), Keepalive()))
    config = json.loads(options["grpc.service_config"])
    assert config == retry_policy.service_config()
    (method_config,) = config["methodConfig"]
    # Only calls that are safe to repeat: reads, and Register (idempotent by request_id).
    assert {
        (name["service"].rsplit(".", 1)[1], name["method"]) for name in method_config["name"]
    } == {
        ("UserService", "Register"),
        ("UserService", "GetUser"),
        ("UserService", "ListUsers"),
        ("AuthService", "GetJwks"),
        ("ProbeService", "Ready"),
    }
    assert method_config["retryPolicy"] == {
        "maxAttempts": 4,
        "initialBackoff": "0.1s",
        "maxBackoff": "1s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    assert config["retryThrottling"] == {"maxTokens": 10, "tokenRatio": 0.1}
    assert dict(retry_policy.channel_options())["grpc.service_config"] == json.dumps(config)
    assert options["grpc.enable_retries"] == 1
    # Pings only during calls, no more often than gRPC servers accept by default (5 min).
    assert options["grpc.keepalive_time_ms"] >= 300_000
    assert options["grpc.keepalive_permit_without_calls"] == 0
    assert options["grpc.primary_user_agent"].startswith("usermgmt-client-python/")


def test_retries_can_be_turned_off_and_policies_are_checked() -> None:
    options = dict(channel_options(None, None))
    assert options["grpc.enable_retries"] == 0
    assert "grpc.service_config" not in options
    assert "grpc.keepalive_time_ms" not in options
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=6)


async def test_unavailable_attempts_are_retried_until_one_gets_through(
    server: RunningServer,
) -> None:
    async with refusing_front(server.address, refusals=2) as (front, address):
        client = await signed_in(address, retry=FAST)
        async with client:
            assert front.previous_attempts == ["1", "2"]  # the registration's retries
            front.refusals = 2
            await client.ready()
            assert front.attempts[READY] == 3
            # Authenticated calls are retried the same way, bearer token and all.
            front.refusals = 1
            me = await client.users.get("me")
            assert me.user_id == client.session.user_id  # type: ignore[union-attr]
            assert front.attempts[GET_USER] == 2
            assert front.previous_attempts == ["1", "2", "1", "2", "1"]


async def test_attempts_stop_at_max_attempts(server: RunningServer) -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.1)
    async with (
        refusing_front(server.address, refusals=100) as (front, address),
        UsermgmtClient(address, retry=policy) as client,
    ):
        with pytest.raises(Unavailable) as caught:
            await client.ready()
        assert front.attempts[READY] == 3
        assert caught.value.message == "the front refuses this attempt"


async def test_calls_unsafe_to_repeat_are_not_retried(server: RunningServer) -> None:
    # A refresh token presented twice revokes the session; a second sign-in opens another one.
    async with refusing_front(server.address, refusals=100) as (front, address):
        async with UsermgmtClient(address, retry=FAST) as client:
            with pytest.raises(Unavailable):
                await client.auth.login("someone", "some password")
            client.session = Session("a.b.c", "some-refresh-token")
            with pytest.raises(Unavailable):
                await client.auth.refresh()
        assert front.attempts["/usermgmt.v1.AuthService/Authenticate"] == 1
        assert front.attempts["/usermgmt.v1.AuthService/RefreshToken"] == 1


async def test_other_codes_are_not_retried(server: RunningServer) -> None:
    async with (
        refusing_front(server.address, refusals=1, code=grpc.StatusCode.INTERNAL) as (
            front,
            address,
        ),
        UsermgmtClient(address, retry=FAST) as client,
    ):
        with pytest.raises(InternalError):
            await client.ready()
        assert front.attempts[READY] == 1


async def test_without_a_policy_unavailable_fails_at_once(server: RunningServer) -> None:
    async with (
        refusing_front(server.address, refusals=1) as (front, address),
        UsermgmtClient(address, retry=None) as client,
    ):
        with pytest.raises(Unavailable):
            await client.ready()
        assert front.attempts[READY] == 1


async def test_an_unreachable_target_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with UsermgmtClient(f"127.0.0.1:{port}", retry=FAST, timeout=5) as client:
        with pytest.raises(Unavailable) as caught:
            await client.health()
    assert caught.value.reason == ""


# Reconnect quickly, so the outcome depends on the retry policy, not on the channel's backoff.
QUICK_RECONNECT = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 200),
)


async def _call_while_the_server_comes_up(server: RunningServer, retry: RetryPolicy | None) -> None:
    """Start a call while nothing listens; once its first attempt has failed, start listening."""
    proxy = TcpProxy(f"http://{server.address}")
    async with UsermgmtClient(
        f"127.0.0.1:{proxy.port}", retry=retry, options=QUICK_RECONNECT
    ) as client:
        call = asyncio.create_task(client.ready())
        channel = client.channel
        state = channel.get_state(try_to_connect=True)
        while state is not grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            await asyncio.wait_for(channel.wait_for_state_change(state), 5)
            state = channel.get_state()
        await proxy.start()
        try:
            return await call
        finally:
            await proxy.stop()


async def test_a_call_outlives_a_refused_connection(server: RunningServer) -> None:
    # A connection attempt failed, so the first attempt of the call failed with UNAVAILABLE;
    # the retries (up to 0.5 + 1 + 2 + 2 s of back-off) reach the server once it listens.
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.5, max_backoff=2.0)
    await _call_while_the_server_comes_up(server, policy)
    with pytest.raises(Unavailable):
        await _call_while_the_server_comes_up(server, None)
