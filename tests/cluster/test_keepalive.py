"""The server's connection policy on the wire: PINGs faster than the allowed interval end the
connection with GOAWAY ENHANCE_YOUR_CALM "too_many_pings", PINGs at the allowed pace keep it
(also with no call in flight), and an idle connection is closed after the idle timeout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.cluster.http2 import ENHANCE_YOUR_CALM, Http2Connection
from tests.e2e.harness import RunningServer, running_server


@pytest.fixture(scope="module")
async def strict_server(moto_endpoint: str) -> AsyncIterator[RunningServer]:
    async with running_server(
        moto_endpoint,
        USERMGMT_KEEPALIVE_MIN_PING_INTERVAL="1",
        USERMGMT_MAX_CONNECTION_IDLE="0",
    ) as server:
        yield server


async def connect(server: RunningServer) -> Http2Connection:
    host, port = server.address.rsplit(":", 1)
    return await Http2Connection.open(host, int(port))


async def test_pinging_faster_than_allowed_gets_too_many_pings(
    strict_server: RunningServer,
) -> None:
    connection = await connect(strict_server)
    goaway = None
    try:
        for opaque in range(6):
            try:
                await connection.ping(opaque)
            except ConnectionError:
                break  # closed after its GOAWAY, which is still to be read
            if goaway := await connection.next_goaway(within=0.05):
                break
        goaway = goaway or await connection.next_goaway(within=10)
    finally:
        await connection.close()
    assert goaway is not None, "the server tolerated 6 PINGs in 0.3 s"
    assert goaway.error_code == ENHANCE_YOUR_CALM
    assert goaway.debug == b"too_many_pings"


async def test_pinging_at_the_allowed_pace_keeps_an_idle_connection(
    strict_server: RunningServer,
) -> None:
    connection = await connect(strict_server)
    try:
        for opaque in range(4):
            await connection.ping(opaque)
            # Twice the minimum interval, so a busy machine cannot make two PINGs look close.
            assert await connection.next_goaway(within=2.0) is None
        assert connection.ping_acks == 4
    finally:
        await connection.close()


async def test_an_idle_connection_is_closed_after_the_idle_timeout(moto_endpoint: str) -> None:
    async with running_server(moto_endpoint, USERMGMT_MAX_CONNECTION_IDLE="1") as server:
        connection = await connect(server)
        try:
            goaway = await connection.next_goaway(within=10)
        finally:
            await connection.close()
    assert goaway is not None, "an idle connection stayed open"
    assert goaway.debug == b"connection idle"
    assert goaway.last_stream == 0
