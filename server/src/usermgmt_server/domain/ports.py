"""The small interfaces the domain needs; adapters implement them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.model import (
    CodePurpose,
    Holders,
    IdempotencyRecord,
    IssuedToken,
    LoginFailures,
    OneTimeCode,
    Principal,
    RefreshFamily,
    Rotation,
    User,
    UserPage,
    UserState,
)


class UserRepository(Protocol):
    """Durable storage of accounts; every method is atomic.

    Errors: ``UsernameTaken``/``EmailTaken`` when a guard is held by another account,
    ``EtagMismatch`` when the stored version differs from the expected one, ``UserNotFound``
    when the account vanished, ``DuplicateRequest`` when an idempotency key exists,
    ``StorageUnavailable`` when storage cannot be reached.
    """

    async def create(
        self,
        user: User,
        idempotency: IdempotencyRecord | None = None,
        *,
        events: Sequence[DomainEvent] = (),
        code: OneTimeCode | None = None,
    ) -> None:
        """Store a new account with its unique guards, idempotency record, outbox events and a
        one-time code, all in one transaction."""
        ...

    async def get(self, user_id: str) -> User | None:
        """The account with this id, or ``None``."""
        ...

    async def find_by_username(self, username_key: str) -> User | None:
        """The account holding this normalised username, or ``None``."""
        ...

    async def find_by_email(self, email_key: str) -> User | None:
        """The account holding this normalised e-mail address, or ``None``."""
        ...

    async def holders(
        self, *, username_keys: Collection[str], email_keys: Collection[str]
    ) -> Holders:
        """Which accounts hold these normalised usernames and e-mail addresses, read in as few
        round trips as the storage allows (strongly consistent)."""
        ...

    async def update(
        self,
        before: User,
        after: User,
        *,
        consume_code: OneTimeCode | None = None,
        events: Sequence[DomainEvent] = (),
        code: OneTimeCode | None = None,
    ) -> None:
        """Replace ``before`` (matched by version) with ``after``, moving changed guards, in one
        transaction with the outbox ``events`` and a new one-time ``code`` (replacing the user's
        code of that purpose).

        With ``consume_code``, the code is deleted in the same transaction (only if its hash is
        still the stored one); if it is gone or replaced, ``CodeConsumed`` is raised and nothing
        changes.
        """
        ...

    async def delete(self, user: User, *, events: Sequence[DomainEvent] = ()) -> None:
        """Remove the account (matched by version) and free its guards, writing ``events``."""
        ...

    async def replace_password_hash(self, user: User, new_hash: str) -> None:
        """Swap the password hash if it is still ``user.password_hash`` (no version change)."""
        ...

    async def list_page(
        self, *, state: UserState | None, limit: int, cursor: dict[str, object] | None
    ) -> UserPage:
        """Up to ``limit`` accounts after ``cursor``, optionally only those in ``state``."""
        ...

    async def get_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        """The stored outcome of an earlier call with this idempotency key, or ``None``."""
        ...


class CodeStore(Protocol):
    """One-time codes (e-mail verification, password reset), one per user and purpose."""

    async def save_code(self, code: OneTimeCode, *, events: Sequence[DomainEvent] = ()) -> None:
        """Store ``code`` (replacing any earlier code of the same user and purpose) together
        with the outbox ``events`` in one transaction."""
        ...

    async def get_code(self, user_id: str, purpose: CodePurpose) -> OneTimeCode | None:
        """The stored code, or ``None`` (expired codes count as absent)."""
        ...

    async def count_attempt(
        self, user_id: str, purpose: CodePurpose, *, max_attempts: int, now: datetime
    ) -> OneTimeCode | None:
        """Atomically use up one attempt; the code after the increment, or ``None`` when there is
        no code, it expired, or its attempts are exhausted (all instances share the count)."""
        ...

    async def delete_code(self, user_id: str, purpose: CodePurpose) -> None:
        """Remove the code if present."""
        ...


class RefreshTokenStore(Protocol):
    """Refresh-token families and their single-use tokens (stored as keyed hashes)."""

    async def create_family(self, family: RefreshFamily, token_hash: str) -> None:
        """Start a family with its first token."""
        ...

    async def rotate(self, token_hash: str, new_token_hash: str, now: datetime) -> Rotation:
        """Atomically retire ``token_hash`` and issue ``new_token_hash`` in the same family.

        ROTATED: done. REUSED: the token was already retired (the caller revokes the family).
        INVALID: unknown, expired or revoked. Of concurrent rotations of one token, at most one
        is ROTATED.
        """
        ...

    async def find_family(self, token_hash: str) -> RefreshFamily | None:
        """The live family a token belongs to, or ``None``."""
        ...

    async def revoke_family(self, family_id: str) -> None:
        """Revoke every token of the family (idempotent)."""
        ...


class LoginFailureStore(Protocol):
    """Failed sign-in counters shared by every instance; ``subject`` is a user id or a login."""

    async def get_failures(self, subject: str) -> LoginFailures:
        """The current counter (zero when none is stored)."""
        ...

    async def record_failure(self, subject: str, *, expires_at: datetime) -> int:
        """Atomically add one failure; returns the new count. The counter is forgotten after
        ``expires_at`` unless a hard lock is set."""
        ...

    async def lock(
        self,
        subject: str,
        *,
        until: datetime | None,
        hard: bool,
        events: Sequence[DomainEvent] = (),
    ) -> bool:
        """Lock sign-in until ``until`` (only ever extending an existing lock), or for good; the
        outbox ``events`` are written in the same transaction only if the lock changed, which
        the result says."""
        ...

    async def record_blocked(self, subject: str) -> None:
        """Count an attempt refused by an existing lock without touching the lock."""
        ...

    async def clear_failures(self, subject: str, *, events: Sequence[DomainEvent] = ()) -> None:
        """Forget failures and locks of ``subject`` (with the outbox ``events``, atomically)."""
        ...


class CodeSealer(Protocol):
    """Encrypts codes that travel inside notification events, so storage never holds them in
    plain text (the outbox keeps events until they are published)."""

    def seal(self, plain: str) -> str:
        """The sealed form of ``plain``."""
        ...

    def unseal(self, sealed: str) -> str:
        """The plain form; raises ``ValueError`` when ``sealed`` is not genuine."""
        ...


class EventRelay(Protocol):
    """Publishes events right after the transaction that wrote them to the outbox committed.

    Best effort and non-blocking: whatever it cannot publish stays in the outbox for the
    sweeper, so delivery is at least once.
    """

    def committed(self, events: Sequence[DomainEvent]) -> None:
        """Hand over the events of a committed transaction."""
        ...


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """How much the outbox holds: item count and the time of the oldest event."""

    count: int
    oldest: datetime | None


class Outbox(Protocol):
    """Events written by transactions and not yet published."""

    async def pending(self, *, written_before: datetime, limit: int) -> list[DomainEvent]:
        """Up to ``limit`` events written before ``written_before``, oldest first per shard."""
        ...

    async def remove(self, events: Sequence[DomainEvent]) -> None:
        """Forget published events, any number of them (idempotent: events already gone are
        fine); raises ``StorageUnavailable`` when some could not be removed."""
        ...

    async def backlog(self) -> OutboxBacklog:
        """Count and age of what is waiting."""
        ...


class LeaseStore(Protocol):
    """Leases that let one instance at a time do a background job."""

    async def acquire(self, name: str, owner: str, *, until: datetime, now: datetime) -> bool:
        """Take or renew lease ``name`` for ``owner`` until ``until`` if it is free, expired or
        already ours; whether ``owner`` holds it now."""
        ...


class CodeConsumed(Exception):
    """Raised by ``UserRepository.update`` when the code to consume is gone or replaced."""


class DuplicateRequest(Exception):
    """Raised by ``UserRepository.create`` when the idempotency key already exists."""


class PasswordHasher(Protocol):
    """Slow, salted password hashing that keeps the event loop free."""

    async def hash(self, password: str) -> str:
        """A self-describing hash of ``password``."""
        ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``; a hash of no known scheme (such as
        ``NO_PASSWORD``) never matches and costs the time of a real verification."""
        ...

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of one verification, for logins of unknown accounts."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters or another scheme than the current
        ones (a successful sign-in then replaces it)."""
        ...

    def check_imported(self, password_hash: str) -> str | None:
        """Why a hash made by another system cannot be stored (unknown scheme, malformed,
        parameters out of bounds), or ``None`` when ``verify`` can check passwords against it."""
        ...


class AccessTokenIssuer(Protocol):
    """Signs access tokens for authenticated users."""

    def issue(self, user: User) -> IssuedToken:
        """A new access token for ``user``."""
        ...


class AccessTokenVerifier(Protocol):
    """Checks access tokens presented by callers."""

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises ``NotAuthenticated`` otherwise."""
        ...


class PageTokenCodec(Protocol):
    """Turns storage cursors into opaque, signed page tokens bound to a filter."""

    def encode(self, cursor: dict[str, object], binding: str) -> str:
        """A URL-safe token carrying ``cursor`` and bound to ``binding``."""
        ...

    def decode(self, token: str, binding: str) -> dict[str, object]:
        """The cursor inside ``token``; raises ``InvalidPageToken`` on any mismatch."""
        ...


class KeyedHasher(Protocol):
    """Keyed one-way digests (HMAC) with per-purpose key separation."""

    def digest(self, purpose: str, data: bytes) -> str:
        """A hex digest of ``data`` under the key for ``purpose``."""
        ...


class Clock(Protocol):
    """The current time (injected so rules that depend on time can be tested)."""

    def now(self) -> datetime:
        """The current UTC time."""
        ...


class IdGenerator(Protocol):
    """Creates new opaque account ids."""

    def new_user_id(self) -> str:
        """A fresh, unique, URL-safe id."""
        ...
