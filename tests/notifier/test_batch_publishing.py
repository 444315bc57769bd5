"""Outbox events published in batches, against moto: the filtered queue gets the notification
requests with their attributes, and an event SNS refuses is the only one left in the outbox."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.notifier.support import notification
from usermgmt_server.adapters.dynamodb import DynamoLoginFailureStore, DynamoOutbox
from usermgmt_server.adapters.dynamodb.clients import AwsClients
from usermgmt_server.adapters.events.cloudevents import message_attributes, message_body
from usermgmt_server.adapters.events.delivery import publish_and_remove
from usermgmt_server.adapters.events.publisher import SnsEventPublisher
from usermgmt_server.adapters.security.sealing import AesGcmSealer
from usermgmt_server.domain.events import (
    NOTIFY_PASSWORD_RESET_CODE,
    NOTIFY_WELCOME,
    USER_REGISTERED,
    USER_UPDATED,
    DomainEvent,
)
from usermgmt_server.notifier.resources import PipelineInfo

# More than SNS takes in one message (256 KiB), less than DynamoDB takes in one item.
TOO_LONG = 300_000


async def test_a_batch_reaches_the_filtered_queue_and_a_refused_event_stays_in_the_outbox(
    messaging: AwsClients,
    topic_arn: str,
    pipeline: PipelineInfo,
    marker_table: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    subject = f"batch-{uuid.uuid4().hex[:10]}"
    notifications = [notification(NOTIFY_WELCOME), notification(NOTIFY_PASSWORD_RESET_CODE)]
    facts = [
        DomainEvent(str(uuid.uuid4()), USER_REGISTERED, subject, notifications[0].time, {"n": n})
        for n in range(7)
    ]
    refused = DomainEvent(
        str(uuid.uuid4()), USER_UPDATED, subject, facts[0].time, {"padding": "x" * TOO_LONG}
    )
    events = [facts[0], notifications[0], *facts[1:4], refused, notifications[1], *facts[4:]]
    assert len(events) == 10
    await DynamoLoginFailureStore(messaging.dynamodb, marker_table).clear_failures(
        subject, events=events
    )
    publisher = SnsEventPublisher(messaging.sns, topic_arn, AesGcmSealer(os.urandom(32)))
    outbox = DynamoOutbox(messaging.dynamodb, marker_table)

    with caplog.at_level(logging.WARNING):
        published = await publish_and_remove(publisher, outbox, events, "publication failed")

    assert published == 9
    later = datetime.now(UTC) + timedelta(days=1)
    mine = {e.event_id for e in events}
    left = [e for e in await outbox.pending(written_before=later, limit=100) if e.event_id in mine]
    assert left == [refused]
    (warning,) = [r for r in caplog.records if r.getMessage() == "publication failed"]
    assert warning.event_ids == [refused.event_id]  # type: ignore[attr-defined]
    assert warning.errors == ["InvalidParameter"]  # type: ignore[attr-defined]
    received = await messaging.sqs.receive_message(
        QueueUrl=pipeline.queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=1,
        MessageAttributeNames=["All"],
    )
    messages = received["Messages"]
    assert sorted(m["Body"] for m in messages) == sorted(message_body(e) for e in notifications)
    by_body = {message_body(e): e for e in notifications}
    for message in messages:
        assert message["MessageAttributes"] == message_attributes(by_body[message["Body"]])
