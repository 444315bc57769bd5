"""Sessions: access tokens plus rotating refresh tokens, revocation and per-call checks."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from datetime import datetime, timedelta

from usermgmt_server.domain.errors import (
    EtagMismatch,
    InvalidRefreshToken,
    NotAuthenticated,
    UserNotFound,
)
from usermgmt_server.domain.model import (
    Principal,
    RefreshFamily,
    RotationOutcome,
    SessionTokens,
    User,
    UserState,
)
from usermgmt_server.domain.ports import (
    AccessTokenIssuer,
    Clock,
    KeyedHasher,
    RefreshTokenStore,
    UserRepository,
)

_REFRESH_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,256}")
_REVOKE_ATTEMPTS = 3


class SessionService:
    """Opens, renews, ends and checks sessions.

    A refresh token is single-use: each refresh retires it and hands out the next one of the
    same family. Presenting a retired token again means it leaked, so the whole family is
    revoked. A user's ``tokens_valid_after`` kills every family created and every access token
    issued before it ("sign out everywhere").
    """

    def __init__(
        self,
        *,
        users: UserRepository,
        refresh_tokens: RefreshTokenStore,
        access_tokens: AccessTokenIssuer,
        keyed_hasher: KeyedHasher,
        clock: Clock,
        refresh_ttl: timedelta,
    ) -> None:
        self._users = users
        self._refresh_tokens = refresh_tokens
        self._access_tokens = access_tokens
        self._keyed_hasher = keyed_hasher
        self._clock = clock
        self._refresh_ttl = refresh_ttl

    async def open(self, user: User) -> SessionTokens:
        """A new session (a new refresh family) for ``user``."""
        now = self._clock.now()
        family = RefreshFamily(
            family_id=secrets.token_urlsafe(16),
            user_id=user.user_id,
            created_at=now,
            expires_at=now + self._refresh_ttl,
        )
        refresh_token = _new_refresh_token()
        await self._refresh_tokens.create_family(family, self._hash(refresh_token))
        return SessionTokens(
            access_token=self._access_tokens.issue(user),
            refresh_token=refresh_token,
            refresh_expires_in=int(self._refresh_ttl.total_seconds()),
        )

    async def refresh(self, refresh_token: str) -> SessionTokens:
        """Retire ``refresh_token`` and return the session's next tokens."""
        if not _REFRESH_TOKEN_PATTERN.fullmatch(refresh_token):
            raise InvalidRefreshToken()
        now = self._clock.now()
        next_token = _new_refresh_token()
        rotation = await self._refresh_tokens.rotate(
            self._hash(refresh_token), self._hash(next_token), now
        )
        family = rotation.family
        if rotation.outcome is RotationOutcome.REUSED and family is not None:
            await self._refresh_tokens.revoke_family(family.family_id)
        if rotation.outcome is not RotationOutcome.ROTATED or family is None:
            raise InvalidRefreshToken()
        user = await self._users.get(family.user_id)
        if user is None or not _session_alive(user, family.created_at):
            await self._refresh_tokens.revoke_family(family.family_id)
            raise InvalidRefreshToken()
        return SessionTokens(
            access_token=self._access_tokens.issue(user),
            refresh_token=next_token,
            refresh_expires_in=max(0, int((family.expires_at - now).total_seconds())),
        )

    async def logout(self, refresh_token: str) -> None:
        """End the session ``refresh_token`` belongs to; unknown tokens are ignored."""
        if not _REFRESH_TOKEN_PATTERN.fullmatch(refresh_token):
            return
        family = await self._refresh_tokens.find_family(self._hash(refresh_token))
        if family is not None:
            await self._refresh_tokens.revoke_family(family.family_id)

    async def revoke_all(self, user: User) -> User:
        """Invalidate every session and access token of ``user`` issued before now."""
        for _ in range(_REVOKE_ATTEMPTS):
            updated = revoked(user, self._clock.now())
            try:
                await self._users.update(user, updated)
                return updated
            except EtagMismatch:
                fresh = await self._users.get(user.user_id)
                if fresh is None:
                    raise UserNotFound() from None
                user = fresh
        raise EtagMismatch()

    def check(self, principal: Principal, user: User | None) -> User:
        """The caller's account if its access token is still good; ``NotAuthenticated`` if the
        account is gone or disabled, or the token predates the account's revocation time."""
        if user is None or user.state is UserState.DISABLED:
            raise NotAuthenticated("the access token is no longer valid")
        if (
            user.tokens_valid_after is not None
            and principal.issued_at is not None
            and principal.issued_at < user.tokens_valid_after.replace(microsecond=0)
        ):
            raise NotAuthenticated("the access token was revoked")
        return user

    def _hash(self, refresh_token: str) -> str:
        return self._keyed_hasher.digest("refresh-token", refresh_token.encode())


def revoked(user: User, now: datetime) -> User:
    """``user`` with every earlier session revoked (a visible change: the etag moves)."""
    return replace(user, tokens_valid_after=now, version=user.version + 1, update_time=now)


def _session_alive(user: User, created_at: datetime) -> bool:
    if user.state is not UserState.ACTIVE:
        return False
    return user.tokens_valid_after is None or created_at >= user.tokens_valid_after


def _new_refresh_token() -> str:
    # 32 random bytes: 256 bits, 43 URL-safe characters.
    return secrets.token_urlsafe(32)
