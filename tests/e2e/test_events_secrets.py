"""Canary scan: distinctive passwords, the hashes made of them, access and refresh tokens never
appear in a published event or a log line; codes appear only in notification events."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable

import pytest

from tests.e2e.harness import (
    Api,
    RunningServer,
    authenticate,
    bearer,
    cloudevents,
    drop_queue,
    expect_rpc_error,
    mentions_code,
    messaging_clients,
    notifier_under_test,
    outbox_items,
    receive_all,
    refresh,
    running_server,
    subscribe_queue,
    unique,
    wait_for,
)
from usermgmt.v1 import user_service_pb2
from usermgmt_server.logging_setup import JsonFormatter

# The libraries the server's logging configuration quiets below WARNING (they log request
# bodies at DEBUG); the test keeps the same configuration so it sees what operators see.
QUIETED_LIBRARIES = ("botocore", "aiobotocore", "aioboto3", "urllib3", "werkzeug", "moto")
NOTIFICATION_PREFIX = "usermgmt.notification."


@pytest.fixture(scope="module")
async def server(moto_endpoint: str) -> AsyncIterator[RunningServer]:
    """A server that requires e-mail verification, so codes are sent."""
    async with running_server(moto_endpoint, USERMGMT_REQUIRE_EMAIL_VERIFICATION="true") as started:
        yield started


def canary(label: str) -> str:
    """A password nothing else could contain by chance."""
    return f"Canary-{label}-{secrets.token_hex(8)}"


def log_lines(records: Iterable[logging.LogRecord]) -> list[str]:
    """Each record as the server's JSON log line (message, extras and traceback)."""
    formatter = JsonFormatter()
    return [formatter.format(record) for record in records]


def containing(texts: Iterable[str], needle: str) -> list[str]:
    return [text for text in texts if needle in text]


def containing_code(texts: Iterable[str], code: str) -> list[str]:
    return [text for text in texts if mentions_code(text, code)]


async def test_no_password_hash_or_token_in_events_or_logs_and_codes_only_in_notifications(
    server: RunningServer,
    api: Api,
    moto_endpoint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for library in QUIETED_LIBRARIES:
        caplog.set_level(logging.WARNING, logger=library)
    caplog.set_level(logging.DEBUG)  # last: it also sets the capturing handler's level
    first, second, third, wrong = (canary(x) for x in ("first", "second", "third", "wrong"))
    table = server.settings.table_name
    async with (
        messaging_clients(moto_endpoint) as (sqs, sns),
        notifier_under_test(moto_endpoint, table) as notifier,
    ):
        queue = await subscribe_queue(sqs, sns, f"canary-{uuid.uuid4().hex[:10]}")
        try:
            username = unique("canary")
            user = (await api.register(username, password=first)).user
            verification_code = server.notifier.last_code(user.user_id)
            await api.users.VerifyEmail(
                user_service_pb2.VerifyEmailRequest(login=username, code=verification_code)
            )
            await expect_rpc_error(authenticate(api, username, wrong))
            signed_in = await authenticate(api, username, first)
            changed = await api.users.ChangePassword(
                user_service_pb2.ChangePasswordRequest(current_password=first, new_password=second),
                metadata=bearer(signed_in.access_token),
            )
            await api.users.RequestPasswordReset(
                user_service_pb2.RequestPasswordResetRequest(login=user.email)
            )
            reset_code = server.notifier.last_code(user.user_id, "RESET_PASSWORD")
            await api.users.ResetPassword(
                user_service_pb2.ResetPasswordRequest(
                    login=username, code=reset_code, new_password=third
                )
            )
            final = await authenticate(api, username, third)
            renewed = await refresh(api, final.session.refresh_token)
            await api.users.GetUser(
                user_service_pb2.GetUserRequest(user_id="me"),
                metadata=bearer(renewed.session.access_token),
            )

            async def all_published() -> bool:
                return not await outbox_items(moto_endpoint, table)

            assert await wait_for(all_published, within=20)
            messages = await receive_all(sqs, queue.url)
            await notifier.deliver_all()
        finally:
            await drop_queue(sqs, sns, queue)

    sessions = [signed_in.session, changed.session, final.session, renewed.session]
    tokens = [s.access_token for s in sessions] + [s.refresh_token for s in sessions]
    assert all(tokens)
    forbidden = {
        "password": [first, second, third, wrong],
        "token": tokens,
        "hash": ["$argon2"],
    }

    events = cloudevents(messages)
    mine = [
        (json.dumps(message, sort_keys=True), event)
        for message, event in zip(messages, events, strict=True)
        if event["subject"] == user.user_id
    ]
    types = {event["type"] for _, event in mine}
    assert {
        "usermgmt.user.registered.v1",
        "usermgmt.notification.verification_code.v1",
        "usermgmt.user.password_changed.v1",
        "usermgmt.notification.password_reset_code.v1",
    } <= types, types
    published = [json.dumps(message, sort_keys=True) for message in messages]
    lines = log_lines(caplog.records)
    assert containing(lines, user.user_id), "the server's log lines were not captured"

    for kind, values in forbidden.items():
        for value in values:
            assert not containing(published, value), f"a {kind} was published"
            assert not containing(lines, value), f"a {kind} was logged"

    for code, event_type in (
        (verification_code, "usermgmt.notification.verification_code.v1"),
        (reset_code, "usermgmt.notification.password_reset_code.v1"),
    ):
        carrying = [event for text, event in mine if containing_code([text], code)]
        assert carrying, f"no event carries the {event_type} code"
        assert all(event["type"].startswith(NOTIFICATION_PREFIX) for event in carrying), [
            event["type"] for event in carrying
        ]
        assert any(event["type"] == event_type for event in carrying)
        assert not containing_code(lines, code), "a code was logged"
