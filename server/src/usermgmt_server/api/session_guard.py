"""Per-call check that an access token's session is still alive, with a short cache."""

from __future__ import annotations

import time
from collections.abc import Callable

from usermgmt_server.api.permissions import ALLOWED_DURING_PASSWORD_CHANGE
from usermgmt_server.domain.errors import PasswordChangeRequired
from usermgmt_server.domain.model import Principal, User
from usermgmt_server.domain.ports import UserRepository
from usermgmt_server.domain.sessions import SessionService

_MAX_ENTRIES = 100_000


class SessionGuard:
    """Refuses access tokens of deleted or disabled accounts and tokens issued before the
    account's ``tokens_valid_after``; holds sessions that must change the password to the
    allowed RPCs.

    Each instance caches an account for ``cache_seconds`` (0 = read storage on every call), so
    a revocation reaches every instance within that window.
    """

    def __init__(
        self,
        users: UserRepository,
        sessions: SessionService,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, User | None]] = {}

    async def check(self, principal: Principal, method: str) -> None:
        """Raise unless ``principal`` may call ``method`` now."""
        user = self._sessions.check(principal, await self._load(principal.user_id))
        if user.password_change_required and method not in ALLOWED_DURING_PASSWORD_CHANGE:
            raise PasswordChangeRequired()

    async def _load(self, user_id: str) -> User | None:
        now = self._clock()
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        user = await self._users.get(user_id)
        if self._cache_seconds > 0:
            if len(self._cache) >= _MAX_ENTRIES:
                self._cache.clear()
            self._cache[user_id] = (now + self._cache_seconds, user)
        return user
