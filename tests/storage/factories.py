"""Builders of domain values for storage tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.identifiers import identifier_key
from usermgmt_server.domain.model import (
    CodePurpose,
    IdempotencyRecord,
    OneTimeCode,
    RefreshFamily,
    User,
    UserState,
)


def unique(prefix: str = "user") -> str:
    """A short name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def fullwidth(text: str) -> str:
    """``text`` in the full-width forms of ASCII (U+FF01..), which NFKC folds back."""
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


def make_user(
    username: str | None = None,
    email: str | None = None,
    *,
    state: UserState = UserState.ACTIVE,
    roles: tuple[str, ...] = (),
    display_name: str = "",
    email_verified: bool = False,
    version: int = 1,
    password_hash: str = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA",
    created: datetime | None = None,
) -> User:
    """A new account; identifier keys are derived the way the domain derives them."""
    username = username if username is not None else unique()
    email = email if email is not None else f"{unique('mail')}@example.com"
    created = created or datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    return User(
        user_id=uuid.uuid4().hex,
        username=username,
        username_key=identifier_key(username),
        email=email,
        email_key=identifier_key(email) if email else "",
        display_name=display_name,
        state=state,
        email_verified=email_verified,
        roles=roles,
        create_time=created,
        update_time=created + timedelta(microseconds=1),
        version=version,
        password_hash=password_hash,
    )


def make_record(user: User, key: str | None = None, fingerprint: str = "fp-1") -> IdempotencyRecord:
    """An idempotency record naming ``user`` as the outcome."""
    return IdempotencyRecord(
        key=key or f"register:{unique('req')}", fingerprint=fingerprint, user_id=user.user_id
    )


def make_code(
    user: User,
    now: datetime,
    *,
    purpose: CodePurpose = CodePurpose.VERIFY_EMAIL,
    code_hash: str | None = None,
    ttl: timedelta = timedelta(minutes=15),
) -> OneTimeCode:
    """A fresh one-time code of ``user`` created at ``now``."""
    return OneTimeCode(
        user_id=user.user_id,
        purpose=purpose,
        code_hash=code_hash or uuid.uuid4().hex,
        target=user.email,
        created_at=now,
        expires_at=now + ttl,
    )


def make_family(
    now: datetime, *, user_id: str | None = None, ttl: timedelta = timedelta(days=30)
) -> RefreshFamily:
    """A new refresh-token family started at ``now``."""
    return RefreshFamily(
        family_id=unique("family"),
        user_id=user_id or uuid.uuid4().hex,
        created_at=now,
        expires_at=now + ttl,
    )


def make_event(
    subject: str = "subject",
    time: datetime | None = None,
    *,
    event_type: str = "usermgmt.user.updated.v1",
    data: dict[str, object] | None = None,
    event_id: str | None = None,
) -> DomainEvent:
    """A domain event (with a fresh id unless given) about ``subject`` at ``time``."""
    return DomainEvent(
        event_id=event_id or str(uuid.uuid4()),
        type=event_type,
        subject=subject,
        time=time or datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC),
        data={"note": "é ✓", "nested": {"list": [1, 2.5, None, True]}} if data is None else data,
    )


def token_hash() -> str:
    """A fresh stand-in for the keyed hash of a refresh token."""
    return uuid.uuid4().hex + uuid.uuid4().hex
