"""Notification requests as the notifier receives them: CloudEvents 1.0 JSON in SQS messages.

The body is the CloudEvent itself when the subscription delivers raw messages, or an SNS
envelope (``{"Type": "Notification", "Message": "<CloudEvent JSON>"}``) when it does not.
Anything that can never be delivered (not JSON, not a CloudEvent, an unknown type, a missing or
malformed field) raises ``PoisonMessage``; retrying it would fail the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from usermgmt_server.domain.events import (
    NOTIFY_PASSWORD_RESET_CODE,
    NOTIFY_VERIFICATION_CODE,
    NOTIFY_WELCOME,
)

CODE_TYPES = frozenset({NOTIFY_VERIFICATION_CODE, NOTIFY_PASSWORD_RESET_CODE})
NOTIFICATION_TYPES = CODE_TYPES | {NOTIFY_WELCOME}
CHANNELS = ("email", "sms")
MAX_CODE_LENGTH = 32
MAX_NAME_LENGTH = 256
E164 = re.compile(r"\+[1-9][0-9]{1,14}")


class PoisonMessage(Exception):
    """A message that can never be delivered; ``reason`` names the problem, never a value.

    ``event_id`` is the CloudEvent id when the message got far enough to have one.
    """

    def __init__(self, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


@dataclass(frozen=True, slots=True)
class Notification:
    """One validated delivery request. ``recipient`` and ``code`` stay out of ``repr`` so that
    a stray log line cannot leak them."""

    event_id: str
    type: str
    user_id: str
    channel: str
    recipient: str = field(repr=False)
    username: str
    display_name: str
    time: datetime | None = None
    code: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None

    @property
    def name(self) -> str:
        """How to address the user: the display name, else the username."""
        return self.display_name or self.username


def parse_body(body: str) -> Notification:
    """The notification in an SQS message body (raw CloudEvent or SNS envelope)."""
    document = _json(body)
    if isinstance(document, dict) and document.get("Type") == "Notification":
        inner = document.get("Message")
        if not isinstance(inner, str):
            raise PoisonMessage("SNS envelope without a Message")
        document = _json(inner)
    if not isinstance(document, dict):
        raise PoisonMessage("body is not a JSON object")
    return parse_cloudevent(document)


def parse_cloudevent(event: Mapping[str, Any]) -> Notification:
    """Validate a CloudEvent (structured form, as a mapping) holding a notification request."""
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise PoisonMessage("missing CloudEvent id")
    if event.get("specversion") != "1.0":
        raise PoisonMessage("unsupported CloudEvents specversion", event_id)
    event_type = event.get("type")
    if event_type not in NOTIFICATION_TYPES:
        raise PoisonMessage("unknown notification type", event_id)
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise PoisonMessage("missing data", event_id)
    channel = data.get("channel")
    if channel not in CHANNELS:
        raise PoisonMessage("unknown channel", event_id)
    is_code = event_type in CODE_TYPES
    recipient = _text(data, "recipient", event_id)
    if not _deliverable(str(channel), recipient):
        raise PoisonMessage(f"recipient is not a valid {channel} address", event_id)
    return Notification(
        event_id=event_id,
        type=str(event_type),
        user_id=_text(event, "subject", event_id, required=False),
        channel=str(channel),
        recipient=recipient,
        username=_text(data, "username", event_id),
        display_name=_text(data, "display_name", event_id, required=False),
        time=_time(event, "time", event_id) if event.get("time") is not None else None,
        code=_code(data, event_id) if is_code else None,
        expires_at=_time(data, "expires_at", event_id) if is_code else None,
    )


def _deliverable(channel: str, recipient: str) -> bool:
    if channel == "sms":
        return E164.fullmatch(recipient) is not None
    local, at, domain = recipient.rpartition("@")
    return bool(at and local and domain) and all(
        char.isprintable() and not char.isspace() for char in recipient
    )


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise PoisonMessage("body is not JSON") from None


def _text(source: Mapping[str, Any], key: str, event_id: str, *, required: bool = True) -> str:
    value = source.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise PoisonMessage(f"missing or invalid {key}", event_id)
    if len(value) > MAX_NAME_LENGTH:
        raise PoisonMessage(f"{key} is too long", event_id)
    return value


def _code(data: Mapping[str, Any], event_id: str) -> str:
    code = data.get("code")
    if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH:
        raise PoisonMessage("missing or invalid code", event_id)
    if not code.isprintable() or any(char.isspace() for char in code):
        raise PoisonMessage("missing or invalid code", event_id)
    return code


def _time(source: Mapping[str, Any], key: str, event_id: str) -> datetime:
    value = source.get(key)
    if not isinstance(value, str):
        raise PoisonMessage(f"missing or invalid {key}", event_id)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PoisonMessage(f"missing or invalid {key}", event_id) from None
    # The producer writes aware UTC times; a naive one can only mean UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


__all__ = [
    "CHANNELS",
    "CODE_TYPES",
    "NOTIFICATION_TYPES",
    "Notification",
    "PoisonMessage",
    "parse_body",
    "parse_cloudevent",
]
