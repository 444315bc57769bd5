"""Sign-in: password check, progressive lockout shared by every instance, identical failures."""

from __future__ import annotations

import logging
from datetime import datetime

from usermgmt_server.domain import events
from usermgmt_server.domain.errors import (
    EmailNotVerified,
    EtagMismatch,
    InvalidCredentials,
    UserNotFound,
)
from usermgmt_server.domain.identifiers import identifier_key, normalize_password
from usermgmt_server.domain.lockout import LockoutPolicy
from usermgmt_server.domain.lookup import find_by_login, load_for_admin
from usermgmt_server.domain.model import AuthenticationResult, Principal, User, UserState
from usermgmt_server.domain.ports import (
    Clock,
    EventRelay,
    LoginFailureStore,
    PasswordHasher,
    UserRepository,
)
from usermgmt_server.domain.sessions import SessionService
from usermgmt_server.domain.validation import (
    PASSWORD_MAX_BYTES,
    check_login,
    check_presented_password,
    raise_if_any,
)

logger = logging.getLogger(__name__)

# Looked up for unknown logins so they read storage as often as known ones; never a real id.
_NO_SUCH_USER = "no-such-user"


def failure_subject(user: User | None, login: str) -> str:
    """Whose counter a failure increments: the account, or the login typed when none matches
    (so unknown logins cost the same storage work as known ones)."""
    return user.user_id if user is not None else f"login:{identifier_key(login)}"


class SignIn:
    """Checks credentials and opens sessions.

    Unknown login, wrong password, disabled account and locked account all end in the same
    ``InvalidCredentials`` after one password-hash computation each (a dummy hash when there is
    nothing to compare), so neither the answer nor its timing tells them apart.
    """

    def __init__(
        self,
        *,
        users: UserRepository,
        failures: LoginFailureStore,
        passwords: PasswordHasher,
        sessions: SessionService,
        clock: Clock,
        lockout: LockoutPolicy,
        relay: EventRelay,
    ) -> None:
        self._relay = relay
        self._users = users
        self._failures = failures
        self._passwords = passwords
        self._sessions = sessions
        self._clock = clock
        self._lockout = lockout

    async def authenticate(self, login: str, password: str) -> AuthenticationResult:
        """Check a login and password; open a session for an active account."""
        raise_if_any(
            check_login(login, "login")
            + check_presented_password(password, "password", PASSWORD_MAX_BYTES)
        )
        password = normalize_password(password)
        user = await find_by_login(self._users, login)
        if user is None:
            # As many storage reads as for a known login (the guard, then the account).
            await self._users.get(_NO_SUCH_USER)
        subject = failure_subject(user, login)
        now = self._clock.now()
        failures = await self._failures.get_failures(subject)
        # Every refused attempt costs one hash and one counter write, whatever the reason.
        if user is None or failures.locked(now):
            await self._passwords.verify_dummy(password)
            if user is None:
                await self._record_failure(subject, now)
            else:
                await self._failures.record_blocked(subject)
            raise InvalidCredentials()
        if not await self._passwords.verify(user.password_hash, password):
            await self._record_failure(subject, now)
            raise InvalidCredentials()
        if user.state is UserState.DISABLED:
            await self._failures.record_blocked(subject)
            raise InvalidCredentials()
        if failures.count:
            await self._failures.clear_failures(subject)
        if user.state is UserState.PENDING_VERIFICATION:
            raise EmailNotVerified()
        if self._passwords.needs_rehash(user.password_hash):
            await self._rehash(user, password)
        return AuthenticationResult(session=await self._sessions.open(user), user=user)

    async def verify_password(self, user: User, password: str) -> bool:
        """Check ``password`` against ``user`` (a failure counts towards the lockout)."""
        now = self._clock.now()
        failures = await self._failures.get_failures(user.user_id)
        password = normalize_password(password)
        if failures.locked(now):
            await self._passwords.verify_dummy(password)
            return False
        if await self._passwords.verify(user.password_hash, password):
            return True
        await self._record_failure(user.user_id, now)
        return False

    async def unlock(self, actor: Principal, user_id: str) -> None:
        """Forget an account's failed sign-ins and locks (administrators)."""
        user = await load_for_admin(self._users, actor, user_id)
        written = [events.unlocked(user.user_id, self._clock.now())]
        await self._failures.clear_failures(user.user_id, events=written)
        self._relay.committed(written)
        logger.info("account unlocked", extra={"user_id": user.user_id})

    async def _record_failure(self, subject: str, now: datetime) -> None:
        count = await self._failures.record_failure(subject, expires_at=now + self._lockout.memory)
        # Events for accounts only (not unknown logins), when a lock starts or becomes hard.
        account = not subject.startswith("login:")
        if self._lockout.hard_locked_after(count):
            hard_now = account and count == self._lockout.hard_limit
            written = [events.locked(subject, None, now)] if hard_now else []
            if await self._failures.lock(subject, until=None, hard=True, events=written):
                self._relay.committed(written)
            logger.warning("account locked until reset", extra={"subject": subject})
            return
        delay = self._lockout.delay_after(count)
        if delay is not None:
            first = account and count == self._lockout.threshold
            written = [events.locked(subject, now + delay, now)] if first else []
            if await self._failures.lock(subject, until=now + delay, hard=False, events=written):
                self._relay.committed(written)

    async def _rehash(self, user: User, password: str) -> None:
        try:
            await self._users.replace_password_hash(user, await self._passwords.hash(password))
        except (EtagMismatch, UserNotFound):
            # Another change won the race; the next sign-in rehashes.
            return
