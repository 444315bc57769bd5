"""Domain entities: users, the principal behind a call, and the values the manager trades in."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime

ADMIN_ROLE = "admin"
# The password hash of an account that has no password yet (an invitation): no password
# verifies against it, and verifying costs as long as for a real hash.
NO_PASSWORD = "!"


class UserState(enum.Enum):
    """Lifecycle state of an account (stored by name)."""

    ACTIVE = "ACTIVE"
    PENDING_VERIFICATION = "PENDING_VERIFICATION"
    DISABLED = "DISABLED"


class NotificationChannel(enum.Enum):
    """How a user wants optional messages; security codes always go out."""

    EMAIL = "EMAIL"
    SMS = "SMS"
    NONE = "NONE"


@dataclass(frozen=True, slots=True)
class User:
    """A stored account, including its password hash (never shown by ``repr``).

    ``username_key`` and ``email_key`` are the normalised forms that enforce uniqueness;
    ``version`` grows by one on every visible change and is the source of the etag.
    """

    user_id: str
    username: str
    username_key: str
    email: str
    email_key: str
    display_name: str
    state: UserState
    email_verified: bool
    roles: tuple[str, ...]
    create_time: datetime
    update_time: datetime
    version: int
    password_hash: str = field(repr=False)
    # Access tokens issued before this moment (second precision, like JWT iat) are refused and
    # refresh families created before it are dead: "sign out everywhere".
    tokens_valid_after: datetime | None = None
    password_change_required: bool = False
    # A new address awaiting verification; ``email`` stays in use until it is verified.
    pending_email: str = ""
    notification_channel: NotificationChannel = NotificationChannel.EMAIL
    # E.164 (+ and up to 15 digits), or "" for none.
    phone_number: str = ""

    @property
    def etag(self) -> str:
        """Opaque concurrency tag derived from the version (AIP-154)."""
        return f"v{self.version}"

    @property
    def is_admin(self) -> bool:
        """Whether the account holds the admin role."""
        return ADMIN_ROLE in self.roles


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of an RPC, as proven by its access token."""

    user_id: str
    roles: tuple[str, ...] = ()
    # The token's iat claim (whole seconds), compared with the user's tokens_valid_after.
    issued_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the caller holds the admin role."""
        return ADMIN_ROLE in self.roles


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token and its lifetime in seconds."""

    token: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True, slots=True)
class SessionTokens:
    """A signed-in session: an access token and the refresh token that renews it."""

    access_token: IssuedToken
    refresh_token: str = field(repr=False)
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class AuthenticationResult:
    """What a successful sign-in returns."""

    session: SessionTokens
    user: User


class CodePurpose(enum.Enum):
    """What a one-time code proves."""

    VERIFY_EMAIL = "VERIFY_EMAIL"
    RESET_PASSWORD = "RESET_PASSWORD"


@dataclass(frozen=True, slots=True)
class OneTimeCode:
    """A short code sent to the user, stored only as a keyed hash; one per user and purpose.

    ``target`` is the address the code was sent to (for an e-mail change, the new address).
    """

    user_id: str
    purpose: CodePurpose
    code_hash: str = field(repr=False)
    target: str
    created_at: datetime
    expires_at: datetime
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class RefreshFamily:
    """All refresh tokens descending from one sign-in; revoked together."""

    family_id: str
    user_id: str
    created_at: datetime
    expires_at: datetime


class RotationOutcome(enum.Enum):
    """What happened to a refresh token presented for rotation."""

    ROTATED = "ROTATED"
    REUSED = "REUSED"
    INVALID = "INVALID"


@dataclass(frozen=True, slots=True)
class Rotation:
    """The outcome of a rotation and the family concerned (``None`` when INVALID)."""

    outcome: RotationOutcome
    family: RefreshFamily | None = None


@dataclass(frozen=True, slots=True)
class LoginFailures:
    """Failed sign-ins of one subject and the lock they caused."""

    count: int = 0
    locked_until: datetime | None = None
    hard_locked: bool = False

    def locked(self, now: datetime) -> bool:
        """Whether sign-in is refused at ``now``."""
        return self.hard_locked or (self.locked_until is not None and now < self.locked_until)


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The first outcome of a creating call made with a request id (AIP-155)."""

    key: str
    fingerprint: str
    user_id: str


@dataclass(frozen=True, slots=True)
class UserFilter:
    """Conditions of a ListUsers filter, already normalised; ``canonical`` binds page tokens."""

    state: UserState | None = None
    email_key: str | None = None
    username_key: str | None = None

    @property
    def canonical(self) -> str:
        """A stable text form: equal filters give equal text whatever their spelling.

        JSON keeps values apart, so no value can spell another filter's text; no filter at all
        is the empty string.
        """
        state = self.state.value if self.state is not None else None
        if state is None and self.email_key is None and self.username_key is None:
            return ""
        return json.dumps(
            [state, self.email_key, self.username_key], ensure_ascii=False, separators=(",", ":")
        )


@dataclass(frozen=True, slots=True)
class UserPage:
    """One page of users and the opaque cursor of the next one (``None`` on the last page)."""

    users: list[User]
    next_cursor: dict[str, object] | None


@dataclass(frozen=True, slots=True)
class ListedUsers:
    """One page of ListUsers as returned to the caller, with its signed next-page token."""

    users: list[User]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class Holders:
    """Which accounts hold some normalised usernames and e-mail addresses (key -> user id);
    a key that no account holds is absent."""

    usernames: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
