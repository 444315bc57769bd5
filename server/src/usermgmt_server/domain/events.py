"""Domain events: every state change and every notification request, written to the outbox in
the same transaction as the change, then published (CloudEvents on SNS) at least once."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from usermgmt_server.domain.model import CodePurpose, NotificationChannel, OneTimeCode, User

NOTIFICATION_PREFIX = "usermgmt.notification."

USER_REGISTERED = "usermgmt.user.registered.v1"
USER_EMAIL_VERIFIED = "usermgmt.user.email_verified.v1"
USER_UPDATED = "usermgmt.user.updated.v1"
USER_PASSWORD_CHANGED = "usermgmt.user.password_changed.v1"
USER_LOCKED = "usermgmt.user.locked.v1"
USER_UNLOCKED = "usermgmt.user.unlocked.v1"
USER_DISABLED = "usermgmt.user.disabled.v1"
USER_ENABLED = "usermgmt.user.enabled.v1"
USER_DELETED = "usermgmt.user.deleted.v1"
NOTIFY_VERIFICATION_CODE = NOTIFICATION_PREFIX + "verification_code.v1"
NOTIFY_PASSWORD_RESET_CODE = NOTIFICATION_PREFIX + "password_reset_code.v1"
NOTIFY_WELCOME = NOTIFICATION_PREFIX + "welcome.v1"

EVENT_TYPES = (
    USER_REGISTERED,
    USER_EMAIL_VERIFIED,
    USER_UPDATED,
    USER_PASSWORD_CHANGED,
    USER_LOCKED,
    USER_UNLOCKED,
    USER_DISABLED,
    USER_ENABLED,
    USER_DELETED,
    NOTIFY_VERIFICATION_CODE,
    NOTIFY_PASSWORD_RESET_CODE,
    NOTIFY_WELCOME,
)
_CODE_EVENT_TYPES = {
    CodePurpose.VERIFY_EMAIL: NOTIFY_VERIFICATION_CODE,
    CodePurpose.RESET_PASSWORD: NOTIFY_PASSWORD_RESET_CODE,
}


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One fact about a user, with a stable id (CloudEvents ``id``) for at-least-once delivery.

    ``data`` is JSON-serialisable and never holds a password, hash or token. Code notifications
    carry the code sealed (``sealed_code``) while stored; the publisher opens it for delivery.
    """

    event_id: str
    type: str
    subject: str
    time: datetime
    data: Mapping[str, object] = field(default_factory=dict)

    @property
    def is_notification(self) -> bool:
        """Whether this asks the notifier to deliver a message."""
        return self.type.startswith(NOTIFICATION_PREFIX)


def _event(event_type: str, user_id: str, now: datetime, **data: object) -> DomainEvent:
    return DomainEvent(str(uuid.uuid4()), event_type, user_id, now, dict(data))


def _profile(user: User) -> dict[str, object]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "state": user.state.value,
        "email_verified": user.email_verified,
        "roles": list(user.roles),
    }


def registered(user: User, now: datetime) -> DomainEvent:
    """A new account exists."""
    return _event(USER_REGISTERED, user.user_id, now, user=_profile(user))


def email_verified(user: User, now: datetime) -> DomainEvent:
    """An address of the account was confirmed with a code."""
    return _event(USER_EMAIL_VERIFIED, user.user_id, now, email=user.email)


def updated(user: User, paths: list[str], now: datetime) -> DomainEvent:
    """Fields of the account changed; ``changed_fields`` is the applied field mask."""
    return _event(USER_UPDATED, user.user_id, now, changed_fields=list(paths), user=_profile(user))


def password_changed(user: User, reason: str, now: datetime) -> DomainEvent:
    """The password was replaced (``reason``: changed, reset or set_by_admin)."""
    return _event(USER_PASSWORD_CHANGED, user.user_id, now, reason=reason)


def locked(user_id: str, until: datetime | None, now: datetime) -> DomainEvent:
    """Sign-in is refused after failures; ``until`` None means until reset or unlock."""
    return _event(
        USER_LOCKED,
        user_id,
        now,
        locked_until=until.isoformat() if until else None,
        hard=until is None,
    )


def unlocked(user_id: str, now: datetime) -> DomainEvent:
    """An administrator (or a password reset) cleared the lock."""
    return _event(USER_UNLOCKED, user_id, now)


def disabled(user: User, now: datetime) -> DomainEvent:
    """An administrator disabled the account."""
    return _event(USER_DISABLED, user.user_id, now)


def enabled(user: User, now: datetime) -> DomainEvent:
    """An administrator re-enabled the account."""
    return _event(USER_ENABLED, user.user_id, now)


def deleted(user: User, now: datetime) -> DomainEvent:
    """The account is gone."""
    return _event(USER_DELETED, user.user_id, now)


def delivery(user: User, *, security: bool) -> tuple[str, str]:
    """(channel, recipient) for a message to ``user``: its preference; security messages always
    go out (by e-mail when the preference is NONE or SMS has no number); others respect NONE."""
    channel = user.notification_channel
    if channel is NotificationChannel.SMS and user.phone_number:
        return "sms", user.phone_number
    if channel is NotificationChannel.NONE and not security:
        return "none", ""
    return "email", user.email


SEALED_CODE = "sealed_code"


def code_notification(
    user: User, code: OneTimeCode, sealed_code: str, now: datetime
) -> DomainEvent:
    """Ask the notifier to deliver a code (``sealed_code``: encrypted while stored). An e-mail
    verification code always goes to the address it verifies; a reset code follows the user's
    channel."""
    if code.purpose is CodePurpose.VERIFY_EMAIL:
        channel, recipient = "email", code.target
    else:
        channel, recipient = delivery(user, security=True)
    return _event(
        _CODE_EVENT_TYPES[code.purpose],
        user.user_id,
        now,
        channel=channel,
        recipient=recipient,
        username=user.username,
        display_name=user.display_name,
        expires_at=code.expires_at.isoformat(),
        **{SEALED_CODE: sealed_code},
    )


def welcome(user: User, now: datetime) -> DomainEvent | None:
    """Ask the notifier to welcome the user (optional mail: None when they opted out)."""
    channel, recipient = delivery(user, security=False)
    if channel == "none":
        return None
    return _event(
        NOTIFY_WELCOME,
        user.user_id,
        now,
        channel=channel,
        recipient=recipient,
        username=user.username,
        display_name=user.display_name,
    )
