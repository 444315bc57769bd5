"""A signed-in session: the access token sent with calls and the refresh token that renews it."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from usermgmt._errors import InvalidRefreshToken
from usermgmt._tokens import unverified_claims
from usermgmt.v1 import session_pb2, user_pb2

logger = logging.getLogger("usermgmt")

#: Called with the session after its tokens changed (refresh, password change, sign-in).
TokensCallback = Callable[["Session"], Awaitable[None] | None]


class SharedTokens(Protocol):
    """Tokens that other processes use too (a credentials file shared by commands).

    ``hold()`` is an async context manager that excludes the other processes and yields the
    stored ``(access_token, refresh_token)`` pair (or ``None``); a renewal runs inside it and
    stores its result through ``on_tokens`` before the hold ends, so only one process ever
    spends a given refresh token.
    """

    def hold(self) -> AbstractAsyncContextManager[tuple[str, str | None] | None]: ...


class Session:
    """Tokens of one signed-in account, shared by every call of a client.

    The client renews the access token with ``refresh_token`` shortly before it expires
    (``refresh_margin`` seconds, at most half its lifetime) and once more when the server
    answers UNAUTHENTICATED; concurrent calls share a single refresh. Refresh tokens rotate: each
    renewal replaces ``refresh_token``, and ``on_tokens`` (sync or async) is called so the new
    pair can be stored. When the server refuses the refresh token, ``refresh_token`` becomes
    ``None`` (``ended`` is true) and the next call that needs a new access token raises
    ``InvalidRefreshToken``.

    ``user`` is the account as it was at sign-in, when the session came from ``login``.
    ``shared`` coordinates renewals with other processes that hold the same tokens (see
    ``SharedTokens``).
    """

    def __init__(
        self,
        access_token: str,
        refresh_token: str | None = None,
        *,
        on_tokens: TokensCallback | None = None,
        refresh_margin: float = 60.0,
        user: user_pb2.User | None = None,
        shared: SharedTokens | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.access_token = access_token
        self.refresh_token = refresh_token or None
        self.on_tokens = on_tokens
        self.shared = shared
        self.refresh_margin = refresh_margin
        self.user = user
        self._clock = clock
        self._lock = asyncio.Lock()
        self.refreshes = 0

    @classmethod
    def from_proto(
        cls, session: session_pb2.Session, *, user: user_pb2.User | None = None, **options: Any
    ) -> Session:
        """A session from the ``Session`` message of Authenticate, RefreshToken or
        ChangePassword."""
        return cls(session.access_token, session.refresh_token, user=user, **options)

    @property
    def user_id(self) -> str | None:
        """The account id (the token's ``sub``, read without verification)."""
        subject = unverified_claims(self.access_token).get("sub")
        return subject if isinstance(subject, str) else None

    @property
    def expires_at(self) -> float | None:
        """When the access token expires (seconds since the epoch), from its ``exp`` claim."""
        return _number(unverified_claims(self.access_token).get("exp"))

    @property
    def ended(self) -> bool:
        """Whether the session can no longer be renewed (no refresh token)."""
        return self.refresh_token is None

    def needs_refresh(self) -> bool:
        """Whether the access token expires within the refresh margin (and can be renewed)."""
        if self.refresh_token is None:
            return False
        claims = unverified_claims(self.access_token)
        expires_at, issued_at = _number(claims.get("exp")), _number(claims.get("iat"))
        if expires_at is None:
            return False
        margin = self.refresh_margin
        if issued_at is not None and expires_at > issued_at:
            margin = min(margin, (expires_at - issued_at) / 2)
        return expires_at - self._clock() <= margin

    async def renew(
        self,
        stale_access_token: str,
        exchange: Callable[[str], Awaitable[session_pb2.Session]],
    ) -> bool:
        """Renew the tokens unless another call already replaced ``stale_access_token``.

        ``exchange`` turns a refresh token into a new ``Session`` message (AuthService/
        RefreshToken). Only one renewal runs at a time; callers that waited for it see the new
        access token and return without a call. Returns whether the access token is now
        different from ``stale_access_token``. Exceptions from ``exchange`` propagate, except
        that a refused refresh token first ends the session.
        """
        async with self._lock:
            if self.access_token != stale_access_token:
                return True
            if self.shared is None:
                return await self._exchange(exchange)
            async with self.shared.hold() as stored:
                # Another process may have renewed the same session meanwhile: its tokens are
                # the live ones, and our refresh token has already been used.
                if stored is not None and stored[0] not in (stale_access_token, ""):
                    self.access_token, self.refresh_token = stored[0], stored[1] or None
                    return True
                return await self._exchange(exchange)

    async def _exchange(self, exchange: Callable[[str], Awaitable[session_pb2.Session]]) -> bool:
        if self.refresh_token is None:
            return False
        try:
            renewed = await exchange(self.refresh_token)
        except InvalidRefreshToken:
            self.refresh_token = None
            raise
        self.refreshes += 1
        await self.replace(renewed)
        return True

    async def replace(self, session: session_pb2.Session) -> None:
        """Take the tokens of a new ``Session`` message and tell ``on_tokens``."""
        self.access_token = session.access_token
        self.refresh_token = session.refresh_token or None
        await self.notify()

    async def notify(self) -> None:
        """Call ``on_tokens``; a failing callback is logged, the tokens stay in use."""
        if self.on_tokens is None:
            return
        try:
            result = self.on_tokens(self)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.warning(
                "the on_tokens callback failed; the new tokens were not stored", exc_info=True
            )

    def __repr__(self) -> str:
        # Never show the tokens themselves.
        return (
            f"Session(user_id={self.user_id!r}, expires_at={self.expires_at!r}, ended={self.ended})"
        )


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
