"""The small interfaces the domain needs; adapters implement them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from usermgmt_server.domain.model import (
    IdempotencyRecord,
    IssuedToken,
    Principal,
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

    async def create(self, user: User, idempotency: IdempotencyRecord | None = None) -> None:
        """Store a new account with its unique guards (and idempotency record) in one step."""
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

    async def update(self, before: User, after: User) -> None:
        """Replace ``before`` (matched by version) with ``after``, moving changed guards."""
        ...

    async def delete(self, user: User) -> None:
        """Remove the account (matched by version) and free its guards."""
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


class DuplicateRequest(Exception):
    """Raised by ``UserRepository.create`` when the idempotency key already exists."""


class PasswordHasher(Protocol):
    """Slow, salted password hashing that keeps the event loop free."""

    async def hash(self, password: str) -> str:
        """A self-describing hash of ``password``."""
        ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``."""
        ...

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of one verification, for logins of unknown accounts."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones."""
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
