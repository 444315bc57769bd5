"""Per-address rate limits behind one trusted proxy: the address is the x-forwarded-for entry
the proxy appended, forged entries further left change nothing, and each RPC group counts
separately."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from tests.e2e.harness import (
    PASSWORD,
    Api,
    RunningServer,
    authenticate,
    error_details,
    expect_rpc_error,
    forwarded_for,
    retry_delay,
    running_server,
    unique,
)
from usermgmt.v1 import user_service_pb2

LIMIT = 5
_hosts = itertools.count(10)

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module")
async def server(moto_endpoint: str) -> AsyncIterator[RunningServer]:
    """A server behind one trusted proxy, allowing five calls per minute per address."""
    async with running_server(
        moto_endpoint,
        USERMGMT_RATE_LIMIT_PER_MINUTE=str(LIMIT),
        USERMGMT_TRUSTED_PROXY_HOPS="1",
    ) as started:
        yield started


def fresh_address() -> str:
    """A client address no other test of this module uses."""
    return f"198.51.100.{next(_hosts)}"


async def register(api: Api, metadata: Metadata) -> user_service_pb2.RegisterResponse:
    username = unique()
    return await api.users.Register(
        user_service_pb2.RegisterRequest(
            username=username, email=f"{username}@example.com", password=PASSWORD
        ),
        metadata=metadata,
    )


async def request_reset(api: Api, metadata: Metadata) -> object:
    return await api.users.RequestPasswordReset(
        user_service_pb2.RequestPasswordResetRequest(login=unique("ghost")), metadata=metadata
    )


async def assert_rate_limited(call: Awaitable[object]) -> None:
    error = await expect_rpc_error(call)
    details = error_details(error)
    assert (details.code, details.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
    assert details.domain == "usermgmt"
    assert 0 < retry_delay(error) <= 60


async def exhaust(call: Callable[[], Awaitable[object]]) -> None:
    """Spend the allowance with calls that must all be served."""
    for _ in range(LIMIT):
        await call()


async def test_the_sixth_sign_in_from_one_address_is_refused(api: Api) -> None:
    username = (await register(api, forwarded_for(fresh_address()))).user.username
    client = forwarded_for("6.6.6.6, 203.0.113.7")
    await exhaust(lambda: authenticate(api, username, metadata=client))
    await assert_rate_limited(authenticate(api, username, metadata=client))
    # Another client behind the same proxy is served.
    other = await authenticate(api, username, metadata=forwarded_for("6.6.6.6, 203.0.113.8"))
    assert other.access_token


async def test_wrong_passwords_count_too(api: Api) -> None:
    username = (await register(api, forwarded_for(fresh_address()))).user.username
    client = forwarded_for(f"6.6.6.6, {fresh_address()}")
    for _ in range(LIMIT):
        error = error_details(
            await expect_rpc_error(authenticate(api, username, "wrong password!", client))
        )
        assert error.reason == "INVALID_CREDENTIALS"
    await assert_rate_limited(authenticate(api, username, metadata=client))


async def test_forged_leftmost_entries_do_not_reset_the_count(api: Api) -> None:
    username = (await register(api, forwarded_for(fresh_address()))).user.username
    address = fresh_address()
    await exhaust(
        lambda: authenticate(api, username, metadata=forwarded_for(f"6.6.6.6, {address}"))
    )
    for forged in (f"7.7.7.7, {address}", address, f"1.2.3.4, 5.6.7.8, {address}"):
        await assert_rate_limited(authenticate(api, username, metadata=forwarded_for(forged)))


async def test_registration_is_limited(api: Api) -> None:
    client = forwarded_for(f"6.6.6.6, {fresh_address()}")
    await exhaust(lambda: register(api, client))
    await assert_rate_limited(register(api, client))


async def test_password_reset_requests_are_limited(api: Api) -> None:
    client = forwarded_for(f"6.6.6.6, {fresh_address()}")
    await exhaust(lambda: request_reset(api, client))
    await assert_rate_limited(request_reset(api, client))


async def test_each_group_has_its_own_allowance(api: Api) -> None:
    username = (await register(api, forwarded_for(fresh_address()))).user.username
    client = forwarded_for(f"6.6.6.6, {fresh_address()}")
    await exhaust(lambda: authenticate(api, username, metadata=client))
    await assert_rate_limited(authenticate(api, username, metadata=client))
    await register(api, client)
    await request_reset(api, client)
