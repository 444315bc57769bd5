"""The text of every notification: one template per type, as e-mail (plain text and HTML) or SMS.

User-supplied values (names) are stripped of control characters everywhere and HTML-escaped in
HTML; codes are validated on parsing but escaped as well. An SMS stays within 160 characters.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from usermgmt_server.domain.events import (
    NOTIFY_PASSWORD_RESET_CODE,
    NOTIFY_VERIFICATION_CODE,
    NOTIFY_WELCOME,
)
from usermgmt_server.notifier.notifications import Notification, PoisonMessage, parse_cloudevent

SERVICE_NAME = "usermgmt"
SMS_MAX_LENGTH = 160
SMS_NAME_LENGTH = 60


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """An e-mail ready to send: subject, plain-text body and HTML body."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """An SMS ready to send (at most ``SMS_MAX_LENGTH`` characters)."""

    text: str


RenderedMessage = EmailMessage | SmsMessage


def render(notification: Notification) -> RenderedMessage:
    """The message for ``notification`` on its channel; ``PoisonMessage`` for an unknown type."""
    template = _TEMPLATES.get(notification.type)
    if template is None:
        raise PoisonMessage("unknown notification type", notification.event_id)
    if notification.channel == "sms":
        return SmsMessage(_sms(template.sms(notification)))
    if notification.channel == "email":
        return template.email(notification)
    raise PoisonMessage("unknown channel", notification.event_id)


def render_cloudevent(event: Mapping[str, Any]) -> RenderedMessage:
    """Validate and render a notification CloudEvent (structured form, as a mapping)."""
    return render(parse_cloudevent(event))


@dataclass(frozen=True, slots=True)
class _Template:
    email: Callable[[Notification], EmailMessage]
    sms: Callable[[Notification], str]


def _clean(value: str) -> str:
    """``value`` on one line, without control characters (they could break headers or layout)."""
    return " ".join("".join(c if c.isprintable() else " " for c in value).split())


def _escaped(value: str) -> str:
    return html.escape(_clean(value), quote=True)


def _valid_minutes(notification: Notification) -> int | None:
    if notification.time is None or notification.expires_at is None:
        return None
    seconds = (notification.expires_at - notification.time).total_seconds()
    return max(1, math.ceil(seconds / 60))


def _validity(notification: Notification) -> str:
    expires = notification.expires_at
    until = expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if expires else "soon"
    minutes = _valid_minutes(notification)
    if minutes is None:
        return f"It expires at {until}."
    unit = "minute" if minutes == 1 else "minutes"
    return f"It is valid for {minutes} {unit} (until {until})."


def _html_document(title: str, paragraphs: list[str]) -> str:
    body = "\n".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n{body}\n"
        f"<p>&mdash; {SERVICE_NAME}</p>\n</body></html>\n"
    )


def _text_document(paragraphs: list[str]) -> str:
    return "\n\n".join(paragraphs) + f"\n\n-- {SERVICE_NAME}\n"


def _code_email(subject: str, purpose: str, ignore: str) -> Callable[[Notification], EmailMessage]:
    def build(notification: Notification) -> EmailMessage:
        code = notification.code or ""
        validity = _validity(notification)
        text = _text_document(
            [
                f"Hello {_clean(notification.name)},",
                f"{purpose} for the account {_clean(notification.username)}: {_clean(code)}",
                validity,
                ignore,
            ]
        )
        markup = _html_document(
            subject,
            [
                f"Hello {_escaped(notification.name)},",
                f"{html.escape(purpose)} for the account <b>{_escaped(notification.username)}</b>:",
                f'<span style="font-size:1.5em;font-family:monospace">{_escaped(code)}</span>',
                html.escape(validity),
                html.escape(ignore),
            ],
        )
        return EmailMessage(subject=subject, text=text, html=markup)

    return build


def _code_sms(label: str, suffix: str = "") -> Callable[[Notification], str]:
    def build(notification: Notification) -> str:
        minutes = _valid_minutes(notification)
        validity = f" (valid {minutes} min)" if minutes is not None else ""
        return f"{SERVICE_NAME} {label} {_clean(notification.code or '')}{validity}{suffix}"

    return build


def _welcome_email(notification: Notification) -> EmailMessage:
    subject = f"Welcome to {SERVICE_NAME}"
    ready = "Your account {} is ready. You can sign in with your username or e-mail address."
    text = _text_document(
        [f"Hello {_clean(notification.name)},", ready.format(_clean(notification.username))]
    )
    markup = _html_document(
        subject,
        [
            f"Hello {_escaped(notification.name)},",
            ready.format(f"<b>{_escaped(notification.username)}</b>"),
        ],
    )
    return EmailMessage(subject=subject, text=text, html=markup)


def _welcome_sms(notification: Notification) -> str:
    name = _clean(notification.name)
    if len(name) > SMS_NAME_LENGTH:
        name = name[: SMS_NAME_LENGTH - 3] + "..."
    return f"Welcome to {SERVICE_NAME}, {name}! Your account is ready."


def _sms(text: str) -> str:
    # Codes and names are bounded on parsing; this only guards against a template mistake.
    return text if len(text) <= SMS_MAX_LENGTH else text[: SMS_MAX_LENGTH - 3] + "..."


_TEMPLATES: dict[str, _Template] = {
    NOTIFY_VERIFICATION_CODE: _Template(
        email=_code_email(
            f"Your {SERVICE_NAME} verification code",
            "Here is the code that confirms this e-mail address",
            "If you did not ask for it, you can ignore this message.",
        ),
        sms=_code_sms("verification code"),
    ),
    NOTIFY_PASSWORD_RESET_CODE: _Template(
        email=_code_email(
            f"Your {SERVICE_NAME} password reset code",
            "Here is the code to reset the password",
            "If you did not ask to reset your password, ignore this message: "
            "your password stays as it is.",
        ),
        sms=_code_sms("password reset code", ". Not you? Ignore this."),
    ),
    NOTIFY_WELCOME: _Template(email=_welcome_email, sms=_welcome_sms),
}


__all__ = [
    "SMS_MAX_LENGTH",
    "EmailMessage",
    "PoisonMessage",
    "RenderedMessage",
    "SmsMessage",
    "render",
    "render_cloudevent",
]
