"""Events on the SNS topic as subscribers see them: one CloudEvent per state change with the
attributes filter policies use, and only notification requests behind the notifier's filter."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from google.protobuf import field_mask_pb2

from tests.e2e.harness import (
    NOTIFICATION_FILTER_POLICY,
    PASSWORD,
    TOPIC_ARN,
    Api,
    Message,
    RunningServer,
    SubscribedQueue,
    authenticate,
    bearer,
    cloudevents,
    drop_queue,
    expect_rpc_error,
    messaging_clients,
    receive_all,
    receive_until,
    running_server,
    subscribe_queue,
    unique,
)
from usermgmt.v1 import user_pb2, user_service_pb2

NEW_PASSWORD = "a brand new pass phrase for events"
WRONG = "not the right password at all"
LOCKOUT_THRESHOLD = 5

LIFECYCLE_TYPES = Counter(
    [
        "usermgmt.user.registered.v1",
        "usermgmt.notification.verification_code.v1",
        "usermgmt.user.email_verified.v1",
        "usermgmt.notification.welcome.v1",
        "usermgmt.user.updated.v1",
        "usermgmt.user.password_changed.v1",
        "usermgmt.user.disabled.v1",
        "usermgmt.user.enabled.v1",
        "usermgmt.user.locked.v1",
        "usermgmt.user.unlocked.v1",
        "usermgmt.user.deleted.v1",
    ]
)


@pytest.fixture(scope="module")
async def server(moto_endpoint: str) -> AsyncIterator[RunningServer]:
    """A server that requires e-mail verification, so registration sends a code."""
    async with running_server(moto_endpoint, USERMGMT_REQUIRE_EMAIL_VERIFICATION="true") as started:
        yield started


class Subscribers:
    """Two queues on the topic: every event, and notification requests only."""

    def __init__(self, sqs: Any, everything: SubscribedQueue, notifications: SubscribedQueue):
        self.sqs = sqs
        self.everything = everything
        self.notifications = notifications


@pytest.fixture
async def subscribers(moto_endpoint: str) -> AsyncIterator[Subscribers]:
    suffix = uuid.uuid4().hex[:10]
    async with messaging_clients(moto_endpoint) as (sqs, sns):
        everything = await subscribe_queue(sqs, sns, f"events-all-{suffix}")
        notifications = await subscribe_queue(
            sqs, sns, f"events-notify-{suffix}", filter_policy=NOTIFICATION_FILTER_POLICY
        )
        try:
            yield Subscribers(sqs, everything, notifications)
        finally:
            await drop_queue(sqs, sns, everything)
            await drop_queue(sqs, sns, notifications)


def about(messages: list[Message], user_id: str) -> list[Message]:
    """The messages whose CloudEvent is about ``user_id``."""
    return [
        m for m, e in zip(messages, cloudevents(messages), strict=True) if e["subject"] == user_id
    ]


def distinct(messages: list[Message]) -> list[Message]:
    """One message per CloudEvent id (delivery is at least once)."""
    seen: dict[str, Message] = {}
    for message, event in zip(messages, cloudevents(messages), strict=True):
        seen.setdefault(event["id"], message)
    return list(seen.values())


def assert_well_formed(message: Message, user_id: str) -> dict[str, Any]:
    """A CloudEvent 1.0 about ``user_id`` whose SNS attributes match it; returns the event."""
    (event,) = cloudevents([message])
    assert event["specversion"] == "1.0"
    assert event["id"] and isinstance(event["id"], str)
    assert event["source"] and isinstance(event["source"], str)
    assert event["type"].startswith("usermgmt.")
    assert datetime.fromisoformat(event["time"]).tzinfo is not None
    assert event["subject"] == user_id
    assert isinstance(event["data"], dict)
    attributes = {
        name: value["StringValue"] for name, value in message["MessageAttributes"].items()
    }
    assert attributes == {
        "event_type": event["type"],
        "event_id": event["id"],
        "schema_version": "1",
    }
    return event


async def test_each_state_change_is_one_cloudevent_and_the_filter_passes_only_notifications(
    server: RunningServer, api: Api, admin_token: str, subscribers: Subscribers
) -> None:
    admin = bearer(admin_token)
    username = unique("events")
    user = (await api.register(username, password=PASSWORD)).user
    code = server.notifier.last_code(user.user_id)
    await api.users.VerifyEmail(
        user_service_pb2.VerifyEmailRequest(user_id=user.user_id, code=code)
    )
    token = await api.login(username, PASSWORD)
    await api.users.UpdateUser(
        user_service_pb2.UpdateUserRequest(
            user=user_pb2.User(user_id="me", display_name="Events Tester"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        metadata=bearer(token),
    )
    await api.users.ChangePassword(
        user_service_pb2.ChangePasswordRequest(
            current_password=PASSWORD, new_password=NEW_PASSWORD
        ),
        metadata=bearer(token),
    )
    await api.users.DisableUser(
        user_service_pb2.DisableUserRequest(user_id=user.user_id), metadata=admin
    )
    await api.users.EnableUser(
        user_service_pb2.EnableUserRequest(user_id=user.user_id), metadata=admin
    )
    for _ in range(LOCKOUT_THRESHOLD):
        await expect_rpc_error(authenticate(api, username, WRONG))
    await api.users.UnlockUser(
        user_service_pb2.UnlockUserRequest(user_id=user.user_id), metadata=admin
    )
    await api.users.DeleteUser(
        user_service_pb2.DeleteUserRequest(user_id=user.user_id), metadata=admin
    )

    sqs = subscribers.sqs
    expected = sum(LIFECYCLE_TYPES.values())
    received = await receive_until(
        sqs,
        subscribers.everything.url,
        lambda got: len(distinct(about(got, user.user_id))) >= expected,
    )
    received += await receive_all(sqs, subscribers.everything.url)
    mine = distinct(about(received, user.user_id))
    events = [assert_well_formed(message, user.user_id) for message in mine]
    assert Counter(e["type"] for e in events) == LIFECYCLE_TYPES

    (updated,) = [e for e in events if e["type"] == "usermgmt.user.updated.v1"]
    assert updated["data"]["changed_fields"] == ["display_name"]
    assert updated["data"]["user"]["display_name"] == "Events Tester"
    (registered,) = [e for e in events if e["type"] == "usermgmt.user.registered.v1"]
    assert registered["data"]["user"]["username"] == username
    (notice,) = [e for e in events if e["type"] == "usermgmt.notification.verification_code.v1"]
    assert notice["data"]["code"] == code
    assert notice["data"]["recipient"] == user.email

    filtered = await receive_all(sqs, subscribers.notifications.url)
    assert filtered, "the notification queue received nothing"
    for event in cloudevents(filtered):
        assert event["type"].startswith("usermgmt.notification."), event["type"]
    notices = distinct(about(filtered, user.user_id))
    for message in notices:
        assert_well_formed(message, user.user_id)
    assert Counter(e["type"] for e in cloudevents(notices)) == Counter(
        t for t in LIFECYCLE_TYPES if t.startswith("usermgmt.notification.")
    )


async def test_the_topic_the_server_publishes_to_is_the_one_create_table_made(
    moto_endpoint: str,
) -> None:
    async with messaging_clients(moto_endpoint) as (_, sns):
        topics = [
            topic["TopicArn"]
            async for page in sns.get_paginator("list_topics").paginate()
            for topic in page["Topics"]
        ]
    assert TOPIC_ARN in topics
