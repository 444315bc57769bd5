"""Password changes, resets and administrative account controls."""

from __future__ import annotations

import logging
from dataclasses import replace

from usermgmt_server.domain import events
from usermgmt_server.domain.codes import check_code_format
from usermgmt_server.domain.errors import (
    InvalidCode,
    InvalidCredentials,
    PermissionDenied,
    UserNotFound,
)
from usermgmt_server.domain.identifiers import normalize_password
from usermgmt_server.domain.lookup import find_by_login, load_for_admin
from usermgmt_server.domain.model import (
    CodePurpose,
    OneTimeCode,
    Principal,
    SessionTokens,
    User,
    UserState,
)
from usermgmt_server.domain.password_policy import PasswordPolicy
from usermgmt_server.domain.ports import (
    Clock,
    CodeConsumed,
    EventRelay,
    LoginFailureStore,
    PasswordHasher,
    UserRepository,
)
from usermgmt_server.domain.sessions import SessionService, revoked
from usermgmt_server.domain.sign_in import SignIn
from usermgmt_server.domain.validation import (
    PASSWORD_MAX_BYTES,
    check_login,
    check_presented_password,
    raise_if_any,
)
from usermgmt_server.domain.verification import CodeService

logger = logging.getLogger(__name__)


class Credentials:
    """Everything that replaces a password or switches an account on or off.

    Each of these revokes the account's earlier sessions in the same write that makes the
    change (``tokens_valid_after``).
    """

    def __init__(
        self,
        *,
        users: UserRepository,
        passwords: PasswordHasher,
        policy: PasswordPolicy,
        sessions: SessionService,
        sign_in: SignIn,
        codes: CodeService,
        failures: LoginFailureStore,
        clock: Clock,
        relay: EventRelay,
    ) -> None:
        self._relay = relay
        self._users = users
        self._passwords = passwords
        self._policy = policy
        self._sessions = sessions
        self._sign_in = sign_in
        self._codes = codes
        self._failures = failures
        self._clock = clock

    async def change_password(
        self, actor: Principal, current_password: str, new_password: str
    ) -> SessionTokens:
        """Replace the caller's password; every other session ends, a new one is returned."""
        raise_if_any(
            check_presented_password(current_password, "current_password", PASSWORD_MAX_BYTES)
        )
        user = await self._users.get(actor.user_id)
        if user is None:
            raise UserNotFound()
        self._check_policy(user, new_password, "new_password")
        if not await self._sign_in.verify_password(user, current_password):
            raise InvalidCredentials()
        updated = await self._replace_password(
            user, new_password, change_required=False, reason="changed"
        )
        logger.info("password changed", extra={"user_id": user.user_id})
        return await self._sessions.open(updated)

    async def request_reset(self, actor: Principal | None, login: str, return_code: bool) -> str:
        """Send a reset code to the account's address; the same empty answer for everyone
        else (unknown login, disabled account, cooldown)."""
        if return_code and not (actor is not None and actor.is_admin):
            raise PermissionDenied("only administrators may ask for the code to be returned")
        raise_if_any(check_login(login, "login"))
        user = await find_by_login(self._users, login)
        if user is None or user.state is UserState.DISABLED or not user.email:
            return ""
        if not return_code and await self._codes.cooldown_left(user, CodePurpose.RESET_PASSWORD):
            return ""
        return await self._codes.issue(
            user, CodePurpose.RESET_PASSWORD, user.email, return_code=return_code
        )

    async def reset_password(self, login: str, code: str, new_password: str) -> None:
        """Set a new password with a reset code; ends every session and clears any lockout."""
        raise_if_any(check_login(login, "login"))
        check_code_format(code)
        user = await find_by_login(self._users, login)
        if user is None or user.state is UserState.DISABLED:
            raise InvalidCode()
        self._check_policy(user, new_password, "new_password")
        stored = await self._codes.redeem(user, CodePurpose.RESET_PASSWORD, code)
        try:
            await self._replace_password(
                user, new_password, change_required=False, reason="reset", code=stored
            )
        except CodeConsumed:
            raise InvalidCode() from None
        await self._failures.clear_failures(user.user_id)
        logger.info("password reset", extra={"user_id": user.user_id})

    async def set_password(
        self, actor: Principal, user_id: str, password: str, change_required: bool
    ) -> User:
        """An administrator sets a password, optionally forcing a change at next sign-in."""
        user = await load_for_admin(self._users, actor, user_id)
        self._check_policy(user, password, "password")
        updated = await self._replace_password(
            user, password, change_required=change_required, reason="set_by_admin"
        )
        await self._failures.clear_failures(user.user_id)
        logger.info("password set by administrator", extra={"user_id": user.user_id})
        return updated

    async def disable(self, actor: Principal, user_id: str) -> User:
        """Disable an account and end its sessions."""
        user = await load_for_admin(self._users, actor, user_id)
        if user.state is UserState.DISABLED:
            return user
        now = self._clock.now()
        updated = replace(revoked(user, now), state=UserState.DISABLED)
        await self._commit(user, updated, [events.disabled(updated, now)])
        logger.info("account disabled", extra={"user_id": user.user_id})
        return updated

    async def enable(self, actor: Principal, user_id: str) -> User:
        """Re-enable a disabled account (other states are left as they are)."""
        user = await load_for_admin(self._users, actor, user_id)
        if user.state is not UserState.DISABLED:
            return user
        now = self._clock.now()
        updated = replace(user, state=UserState.ACTIVE, version=user.version + 1, update_time=now)
        await self._commit(user, updated, [events.enabled(updated, now)])
        logger.info("account enabled", extra={"user_id": user.user_id})
        return updated

    def _check_policy(self, user: User, password: str, field: str) -> None:
        raise_if_any(
            self._policy.violations(password, field=field, username=user.username, email=user.email)
        )

    async def _replace_password(
        self,
        user: User,
        password: str,
        *,
        change_required: bool,
        reason: str,
        code: OneTimeCode | None = None,
    ) -> User:
        new_hash = await self._passwords.hash(normalize_password(password))
        now = self._clock.now()
        updated = replace(
            revoked(user, now), password_hash=new_hash, password_change_required=change_required
        )
        written = [events.password_changed(updated, reason, now)]
        await self._commit(user, updated, written, consume_code=code)
        return updated

    async def _commit(
        self,
        before: User,
        after: User,
        written: list[events.DomainEvent],
        consume_code: OneTimeCode | None = None,
    ) -> None:
        await self._users.update(before, after, consume_code=consume_code, events=written)
        self._relay.committed(written)
