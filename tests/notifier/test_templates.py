"""Templates and parsing: every type on both channels, escaping, SMS length, poison."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.notifier.support import notification
from usermgmt_server.adapters.events.cloudevents import message_body, to_cloudevent
from usermgmt_server.domain.events import (
    NOTIFY_PASSWORD_RESET_CODE,
    NOTIFY_VERIFICATION_CODE,
    NOTIFY_WELCOME,
    DomainEvent,
)
from usermgmt_server.notifier.notifications import PoisonMessage, parse_body, parse_cloudevent
from usermgmt_server.notifier.templates import (
    SMS_MAX_LENGTH,
    EmailMessage,
    SmsMessage,
    render,
    render_cloudevent,
)

ALL_TYPES = (NOTIFY_VERIFICATION_CODE, NOTIFY_PASSWORD_RESET_CODE, NOTIFY_WELCOME)
HOSTILE_NAME = '<script>alert("x")</script> & <b>Co</b>'


def rendered(event: DomainEvent) -> EmailMessage | SmsMessage:
    return render_cloudevent(to_cloudevent(event))


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_every_type_renders_an_email_with_text_and_html(event_type: str) -> None:
    message = rendered(notification(event_type, code="918273"))

    assert isinstance(message, EmailMessage)
    assert message.subject.startswith(("Your usermgmt", "Welcome to usermgmt"))
    assert "Hello Alice Example," in message.text
    assert "Hello Alice Example," in message.html
    assert message.html.startswith("<!DOCTYPE html>")
    if event_type == NOTIFY_WELCOME:
        assert "918273" not in message.text
    else:
        assert "918273" in message.text and "918273" in message.html
        assert "valid for 15 minutes (until 2025-01-01 12:15 UTC)" in message.text


def test_the_three_types_have_different_subjects() -> None:
    subjects = {rendered(notification(t)).subject for t in ALL_TYPES}  # type: ignore[union-attr]
    assert subjects == {
        "Your usermgmt verification code",
        "Your usermgmt password reset code",
        "Welcome to usermgmt",
    }


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_user_supplied_values_are_escaped_in_html(event_type: str) -> None:
    message = rendered(notification(event_type, display_name=HOSTILE_NAME, username="a&b<c>"))

    assert isinstance(message, EmailMessage)
    assert "<script>" not in message.html and "<b>Co</b>" not in message.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;Co" in message.html
    assert "a&amp;b&lt;c&gt;" in message.html
    assert HOSTILE_NAME in message.text


def test_control_characters_in_names_are_removed() -> None:
    message = rendered(notification(NOTIFY_WELCOME, display_name="Eve\r\nBcc: x@y\x00"))

    assert isinstance(message, EmailMessage)
    assert "Hello Eve Bcc: x@y," in message.text
    assert "\r" not in message.text and "\x00" not in message.html


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        (NOTIFY_VERIFICATION_CODE, "usermgmt verification code 123456 (valid 15 min)"),
        (
            NOTIFY_PASSWORD_RESET_CODE,
            "usermgmt password reset code 123456 (valid 15 min). Not you? Ignore this.",
        ),
        (NOTIFY_WELCOME, "Welcome to usermgmt, Alice Example! Your account is ready."),
    ],
)
def test_every_type_renders_a_short_sms(event_type: str, expected: str) -> None:
    message = rendered(notification(event_type, channel="sms"))

    assert message == SmsMessage(expected)


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_sms_stay_within_160_characters_with_the_longest_values(event_type: str) -> None:
    event = notification(
        event_type,
        channel="sms",
        code="9" * 32,
        display_name="N" * 256,
        valid_for=timedelta(days=3650),
    )
    message = rendered(event)

    assert isinstance(message, SmsMessage)
    assert len(message.text) <= SMS_MAX_LENGTH
    if event_type != NOTIFY_WELCOME:
        assert "9" * 32 in message.text


def test_unknown_type_is_poison() -> None:
    event = notification("usermgmt.notification.postcard.v1")
    with pytest.raises(PoisonMessage) as raised:
        rendered(event)
    assert raised.value.event_id == event.event_id


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"code": None}, "code"),
        ({"code": "12 34"}, "code"),
        ({"code": "1" * 33}, "code"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": None}, "expires_at"),
        ({"channel": "pigeon"}, "channel"),
        ({"channel": None}, "channel"),
        ({"recipient": ""}, "recipient"),
        ({"recipient": "not-an-address"}, "recipient"),
        ({"channel": "sms", "recipient": "555-1234"}, "recipient"),
        ({"username": None}, "username"),
    ],
)
def test_missing_or_invalid_fields_are_poison(change: dict[str, object], reason: str) -> None:
    event = notification(NOTIFY_VERIFICATION_CODE)
    data = {key: value for key, value in {**event.data, **change}.items() if value is not None}
    with pytest.raises(PoisonMessage) as raised:
        parse_cloudevent({**to_cloudevent(event), "data": data})
    assert reason in raised.value.reason
    assert raised.value.event_id == event.event_id


@pytest.mark.parametrize(
    "change", [{"id": ""}, {"specversion": "0.3"}, {"data": "text"}, {"type": None}]
)
def test_invalid_envelopes_are_poison(change: dict[str, object]) -> None:
    with pytest.raises(PoisonMessage):
        parse_cloudevent({**to_cloudevent(notification()), **change})


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"', "", '{"Type": "Notification"}'])
def test_unparseable_bodies_are_poison(body: str) -> None:
    with pytest.raises(PoisonMessage):
        parse_body(body)


def test_raw_bodies_and_sns_envelopes_give_the_same_notification() -> None:
    event = notification(NOTIFY_PASSWORD_RESET_CODE)
    envelope = json.dumps({"Type": "Notification", "Message": message_body(event)})

    assert parse_body(message_body(event)) == parse_body(envelope)
    assert parse_body(envelope).event_id == event.event_id


def test_the_repr_of_a_notification_hides_recipient_and_code() -> None:
    event = notification(NOTIFY_VERIFICATION_CODE, code="555777")
    parsed = parse_body(message_body(event))

    assert "555777" not in repr(parsed)
    assert str(event.data["recipient"]) not in repr(parsed)
    assert render(parsed) == rendered(event)
