"""Sessions renew their access token with the refresh token: after the server refuses an
expired token (once, shared by concurrent calls), or shortly before it expires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.client.support import new_account
from tests.e2e.harness import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    PASSWORD,
    RunningServer,
    running_server,
)
from usermgmt import (
    InvalidCredentials,
    InvalidRefreshToken,
    Session,
    Unauthenticated,
    UsermgmtClient,
)
from usermgmt_server.adapters.security.system import ManualClock

# Past the 15-minute token lifetime and the server's 30 s leeway.
EXPIRED = timedelta(minutes=20)


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture(scope="module")
async def server(moto_endpoint: str, clock: ManualClock) -> AsyncIterator[RunningServer]:
    """A server on the manual clock, so tests can age tokens without waiting."""
    async with running_server(moto_endpoint, clock=clock) as started:
        yield started


class Recorder:
    """An ``on_tokens`` callback that keeps every token pair it was given."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str | None]] = []

    def __call__(self, session: Session) -> None:
        self.pairs.append((session.access_token, session.refresh_token))


async def _signed_in(
    server: RunningServer, recorder: Recorder, **session_options: object
) -> UsermgmtClient:
    client = UsermgmtClient(server.address)
    user = await new_account(client, "refresh")
    await client.auth.login(user.username, PASSWORD, on_tokens=recorder, **session_options)  # type: ignore[arg-type]
    return client


async def test_an_expired_token_is_renewed_once_and_the_call_retried(
    server: RunningServer, clock: ManualClock
) -> None:
    recorder = Recorder()
    client = await _signed_in(server, recorder)
    async with client:
        session = client.session
        assert session is not None
        old_access, old_refresh = session.access_token, session.refresh_token
        assert recorder.pairs == [(old_access, old_refresh)]

        clock.advance(EXPIRED)
        me = await client.users.get("me")

        assert me.user_id == session.user_id
        assert session.refreshes == 1
        assert session.access_token != old_access
        assert session.refresh_token not in (None, old_refresh)
        assert recorder.pairs[-1] == (session.access_token, session.refresh_token)
        assert len(recorder.pairs) == 2
        # The rotated refresh token was replaced: presenting the old one is refused.
        async with UsermgmtClient(server.address) as other:
            other.session = Session(old_access, old_refresh)
            with pytest.raises(InvalidRefreshToken):
                await other.auth.refresh()


async def test_concurrent_calls_share_a_single_renewal(
    server: RunningServer, clock: ManualClock
) -> None:
    recorder = Recorder()
    client = await _signed_in(server, recorder)
    async with client:
        session = client.session
        assert session is not None
        clock.advance(EXPIRED)
        # A second use of the same refresh token would revoke the whole session family, so
        # twenty successes prove that exactly one renewal ran.
        users = await asyncio.gather(*(client.users.get("me") for _ in range(20)))
        assert {user.user_id for user in users} == {session.user_id}
        assert session.refreshes == 1
        assert len(recorder.pairs) == 2


async def test_a_token_about_to_expire_is_renewed_before_the_call(
    server: RunningServer,
) -> None:
    recorder = Recorder()
    # The session's clock says the token has 10 s left: inside the 60 s margin. The server's
    # clock did not move, so it would still accept the old token: only an early renewal can
    # account for a new one.
    skew = [0.0]
    client = await _signed_in(server, recorder, refresh_margin=60.0)
    async with client:
        session = client.session
        assert session is not None and session.expires_at is not None
        session._clock = lambda: time.time() + skew[0]
        assert not session.needs_refresh()
        skew[0] = session.expires_at - time.time() - 10
        assert session.needs_refresh()
        old_access = session.access_token

        await client.users.get("me")

        assert session.refreshes == 1
        assert session.access_token != old_access
        assert len(recorder.pairs) == 2


async def test_a_refused_refresh_token_ends_the_session(
    server: RunningServer, clock: ManualClock
) -> None:
    recorder = Recorder()
    client = await _signed_in(server, recorder)
    async with client, UsermgmtClient(server.address) as admin:
        session = client.session
        assert session is not None
        await admin.auth.login(ADMIN_USERNAME, ADMIN_PASSWORD)
        # Revocation ends sessions created before it (whole seconds, like JWT iat).
        clock.advance(seconds=2)
        await admin.auth.revoke_sessions(session.user_id or "")
        clock.advance(EXPIRED)

        with pytest.raises(InvalidRefreshToken) as caught:
            await client.users.get("me")
        assert isinstance(caught.value.__cause__, Unauthenticated)
        assert session.ended and session.refresh_token is None
        # No further renewal is attempted.
        with pytest.raises(Unauthenticated) as again:
            await client.users.get("me")
        assert type(again.value) is Unauthenticated
        assert session.refreshes == 0


async def test_wrong_passwords_do_not_trigger_a_renewal(server: RunningServer) -> None:
    recorder = Recorder()
    client = await _signed_in(server, recorder)
    async with client:
        session = client.session
        assert session is not None
        with pytest.raises(InvalidCredentials):
            await client.users.change_password("not the current one", "a new long pass phrase")
        assert session.refreshes == 0


async def test_change_password_installs_the_fresh_session(server: RunningServer) -> None:
    recorder = Recorder()
    client = await _signed_in(server, recorder)
    async with client:
        session = client.session
        assert session is not None
        before = session.access_token
        await client.users.change_password(PASSWORD, "another long pass phrase")
        assert session.access_token != before
        assert recorder.pairs[-1] == (session.access_token, session.refresh_token)
        assert (await client.users.get("me")).user_id == session.user_id


async def test_async_and_failing_callbacks(
    server: RunningServer, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    stored: list[str] = []

    async def store(session: Session) -> None:
        await asyncio.sleep(0)
        stored.append(session.access_token)

    client = await _signed_in(server, Recorder())
    async with client:
        session = client.session
        assert session is not None
        session.on_tokens = store
        clock.advance(EXPIRED)
        await client.users.get("me")
        assert stored == [session.access_token]

        def broken(_: Session) -> None:
            raise OSError("disk full")

        session.on_tokens = broken
        clock.advance(EXPIRED)
        with caplog.at_level("WARNING", logger="usermgmt"):
            await client.users.get("me")
        assert session.refreshes == 2
        assert "on_tokens callback failed" in caplog.text
