"""The client's calls against a real server: accounts, sessions, deadlines, health."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tests.client.support import new_account, signed_in
from tests.e2e.harness import PASSWORD, RunningServer, TcpProxy, unique
from usermgmt import (
    DeadlineExceeded,
    InvalidRefreshToken,
    Session,
    Unauthenticated,
    UsermgmtClient,
    UserNotFound,
)
from usermgmt.v1 import user_pb2


async def test_register_login_and_read_yourself(client: UsermgmtClient) -> None:
    username = unique("alice")
    user = await client.users.register(
        username, f"{username}@example.com", PASSWORD, display_name="Alice"
    )
    assert (user.username, user.display_name) == (username, "Alice")
    assert user.state == user_pb2.USER_STATE_ACTIVE

    session = await client.auth.login(username, PASSWORD)
    assert client.session is session
    assert session.user is not None and session.user.user_id == user.user_id
    assert session.user_id == user.user_id
    assert session.refresh_token

    me = await client.users.get("me")
    assert me.user_id == user.user_id
    assert (await client.users.get(user.user_id)).username == username


async def test_calls_without_a_session_are_unauthenticated(client: UsermgmtClient) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await client.users.get("me")
    assert caught.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.reason == "UNAUTHENTICATED"


async def test_register_generates_a_request_id_so_replays_are_safe(
    client: UsermgmtClient,
) -> None:
    username = unique("idem")
    first = await client.users.register(
        username, f"{username}@example.com", PASSWORD, request_id="fixed-id-" + username
    )
    again = await client.users.register(
        username, f"{username}@example.com", PASSWORD, request_id="fixed-id-" + username
    )
    assert again.user_id == first.user_id


async def test_update_and_delete_with_etags(server: RunningServer) -> None:
    client = await signed_in(server.address)
    async with client:
        before = await client.users.get("me")
        updated = await client.users.update("me", etag=before.etag, display_name="Renamed")
        assert updated.display_name == "Renamed"
        assert updated.etag != before.etag
        await client.users.delete("me", etag=updated.etag)
        with pytest.raises(UserNotFound):
            await client.users.get("me")


async def test_session_from_stored_tokens_signs_calls_in(server: RunningServer) -> None:
    first = await signed_in(server.address)
    async with first:
        assert first.session is not None
        tokens = (first.session.access_token, first.session.refresh_token)
    async with UsermgmtClient(server.address, session=Session(*tokens)) as second:
        assert (await second.users.get("me")).user_id == first.session.user_id


async def test_logout_ends_the_session(server: RunningServer) -> None:
    client = await signed_in(server.address)
    async with client:
        session = client.session
        assert session is not None
        await client.auth.logout()
        assert client.session is None
    async with UsermgmtClient(server.address) as other:
        other.session = Session(session.access_token, session.refresh_token)
        with pytest.raises(InvalidRefreshToken):
            await other.auth.refresh()


async def test_default_deadline_turns_a_silent_server_into_deadline_exceeded(
    server: RunningServer,
) -> None:
    proxy = TcpProxy(f"http://{server.address}")
    await proxy.start(hold=True)
    try:
        async with UsermgmtClient(f"127.0.0.1:{proxy.port}", timeout=0.5) as client:
            with pytest.raises(DeadlineExceeded) as caught:
                await client.users.get("me")
            assert caught.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
            # A per-call timeout overrides the default.
            with pytest.raises(DeadlineExceeded):
                await client.ready(timeout=0.2)
    finally:
        await proxy.stop()


async def test_health_and_readiness(client: UsermgmtClient) -> None:
    assert await client.health() == "SERVING"
    await client.ready()


async def test_closing_the_client_closes_its_channel(server: RunningServer) -> None:
    async with UsermgmtClient(server.address) as client:
        await new_account(client)
    with pytest.raises(grpc.aio.UsageError, match="Channel is closed"):
        await client.health()


async def test_a_given_channel_is_left_open(server: RunningServer) -> None:
    channel = grpc.aio.insecure_channel(server.address)
    try:
        async with UsermgmtClient(channel=channel) as client:
            await client.ready()
        async with UsermgmtClient(channel=channel) as client:
            assert await client.health() == "SERVING"
    finally:
        await channel.close()


async def test_concurrent_calls_share_one_client(server: RunningServer) -> None:
    client = await signed_in(server.address)
    async with client:
        users = await asyncio.gather(*(client.users.get("me") for _ in range(10)))
        assert {user.user_id for user in users} == {client.session.user_id}  # type: ignore[union-attr]
