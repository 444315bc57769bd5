"""One-time codes that prove control of an e-mail address (verification, password reset)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from usermgmt_server.domain import events
from usermgmt_server.domain.codes import check_code_format, codes_match, hash_code, new_code
from usermgmt_server.domain.errors import (
    InvalidCode,
    NothingToVerify,
    PermissionDenied,
    ResendCooldown,
    UserNotFound,
)
from usermgmt_server.domain.identifiers import identifier_key
from usermgmt_server.domain.lookup import find_by_login
from usermgmt_server.domain.model import CodePurpose, OneTimeCode, Principal, User, UserState
from usermgmt_server.domain.ports import (
    Clock,
    CodeConsumed,
    CodeSealer,
    CodeStore,
    EventRelay,
    KeyedHasher,
    UserRepository,
)
from usermgmt_server.domain.validation import check_login, check_user_id, raise_if_any

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PreparedCode:
    """A new code: what is stored, what is sent, and the notification event that sends it."""

    code: OneTimeCode
    plain: str
    notification: events.DomainEvent


@dataclass(frozen=True, slots=True)
class CodeRules:
    """Lifetime, attempt budget and resend cooldown of one-time codes."""

    ttl: timedelta = timedelta(minutes=15)
    max_attempts: int = 5
    cooldown: timedelta = timedelta(seconds=60)


class CodeService:
    """Issues, delivers and checks one-time codes; confirms e-mail addresses with them.

    A code is stored only as a keyed hash, expires, survives ``max_attempts`` wrong guesses
    (counted atomically in storage, shared by every instance) and is consumed in the same
    transaction as the change it authorises, so it works once.
    """

    def __init__(
        self,
        *,
        users: UserRepository,
        codes: CodeStore,
        relay: EventRelay,
        sealer: CodeSealer,
        keyed_hasher: KeyedHasher,
        clock: Clock,
        rules: CodeRules,
    ) -> None:
        self._sealer = sealer
        self._users = users
        self._codes = codes
        self._relay = relay
        self._keyed_hasher = keyed_hasher
        self._clock = clock
        self._rules = rules

    def prepare(self, user: User, purpose: CodePurpose, target: str) -> PreparedCode:
        """A new code for ``target`` and its notification event; the caller stores both in the
        transaction of the change they belong to."""
        now = self._clock.now()
        plain = new_code()
        code = OneTimeCode(
            user_id=user.user_id,
            purpose=purpose,
            code_hash=hash_code(self._keyed_hasher, user.user_id, purpose, plain),
            target=target,
            created_at=now,
            expires_at=now + self._rules.ttl,
        )
        notification = events.code_notification(user, code, self._sealer.seal(plain), now)
        return PreparedCode(code, plain, notification)

    async def issue(
        self, user: User, purpose: CodePurpose, target: str, *, return_code: bool = False
    ) -> str:
        """Store a new code (replacing the previous one) and send it to ``target``, or return it
        instead when ``return_code`` (callers check the caller may ask for that)."""
        prepared = self.prepare(user, purpose, target)
        if return_code:
            await self._codes.save_code(prepared.code)
            return prepared.plain
        await self._codes.save_code(prepared.code, events=[prepared.notification])
        self._relay.committed([prepared.notification])
        logger.info("code sent", extra={"user_id": user.user_id, "purpose": purpose.value})
        return ""

    async def cooldown_left(self, user: User, purpose: CodePurpose) -> timedelta | None:
        """Time before another code may be sent, or ``None`` when one may go out now."""
        existing = await self._codes.get_code(user.user_id, purpose)
        if existing is None:
            return None
        left = existing.created_at + self._rules.cooldown - self._clock.now()
        return left if left > timedelta(0) else None

    async def resend_verification(
        self, actor: Principal | None, *, user_id: str, login: str, return_code: bool
    ) -> str:
        """Send a fresh verification code; the answer is the same for unknown accounts."""
        is_admin = actor is not None and actor.is_admin
        if return_code and not is_admin:
            raise PermissionDenied("only administrators may ask for the code to be returned")
        user = await self._subject(user_id, login)
        target = awaiting_verification(user) if user is not None else ""
        if user is None or not target:
            if return_code:
                raise UserNotFound() if user is None else NothingToVerify()
            return ""
        if not return_code:
            left = await self.cooldown_left(user, CodePurpose.VERIFY_EMAIL)
            if left is not None:
                raise ResendCooldown(left.total_seconds())
        return await self.issue(user, CodePurpose.VERIFY_EMAIL, target, return_code=return_code)

    async def verify_email(self, *, user_id: str, login: str, code: str) -> User:
        """Confirm the address the code was sent to: activates a pending account or completes
        an e-mail change. Every failure is the same ``InvalidCode``."""
        check_code_format(code)
        user = await self._subject(user_id, login)
        if user is None:
            raise InvalidCode()
        stored = await self.redeem(user, CodePurpose.VERIFY_EMAIL, code)
        now = self._clock.now()
        updated = confirmed(user, stored.target, now)
        if updated is None:
            raise InvalidCode()
        written = [events.email_verified(updated, now)]
        if user.state is UserState.PENDING_VERIFICATION:
            greeting = events.welcome(updated, now)
            written += [greeting] if greeting else []
        try:
            await self._users.update(user, updated, consume_code=stored, events=written)
        except CodeConsumed:
            raise InvalidCode() from None
        self._relay.committed(written)
        logger.info("e-mail verified", extra={"user_id": user.user_id})
        return updated

    async def redeem(self, user: User, purpose: CodePurpose, code: str) -> OneTimeCode:
        """Spend one attempt on ``code``; the stored code when it matches, else ``InvalidCode``.

        The caller consumes the returned code in the transaction that uses it.
        """
        stored = await self._codes.count_attempt(
            user.user_id, purpose, max_attempts=self._rules.max_attempts, now=self._clock.now()
        )
        candidate = hash_code(self._keyed_hasher, user.user_id, purpose, code)
        if stored is None or not codes_match(stored.code_hash, candidate):
            raise InvalidCode()
        return stored

    async def _subject(self, user_id: str, login: str) -> User | None:
        if user_id:
            raise_if_any(check_user_id(user_id, "user_id"))
            return await self._users.get(user_id)
        raise_if_any(check_login(login, "login"))
        return await find_by_login(self._users, login)


def awaiting_verification(user: User) -> str:
    """The address of ``user`` that a verification code would confirm ("" for none)."""
    if user.pending_email:
        return user.pending_email
    if not user.email_verified and user.email:
        return user.email
    return ""


def confirmed(user: User, target: str, now: object) -> User | None:
    """``user`` after ``target`` was proven theirs, or ``None`` if ``target`` is stale."""
    changes: dict[str, object] = {}
    if user.pending_email and target == user.pending_email:
        changes.update(
            email=target, email_key=identifier_key(target), pending_email="", email_verified=True
        )
    elif target == user.email and not user.email_verified:
        changes["email_verified"] = True
    else:
        return None
    if user.state is UserState.PENDING_VERIFICATION:
        changes["state"] = UserState.ACTIVE
    return replace(user, **changes, version=user.version + 1, update_time=now)
