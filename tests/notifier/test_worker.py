"""The worker against moto: SES e-mail, SNS SMS, duplicates, poison, retries and crashes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta

import pytest

from tests.notifier.support import (
    FROM_ADDRESS,
    WorkerFactory,
    notification,
    queue_depth,
    sent_emails,
    sent_sms,
)
from usermgmt_server.adapters.dynamodb.clients import AwsClients
from usermgmt_server.adapters.events.cloudevents import message_body, to_cloudevent
from usermgmt_server.adapters.security.system import ManualClock
from usermgmt_server.domain.events import (
    NOTIFY_PASSWORD_RESET_CODE,
    NOTIFY_VERIFICATION_CODE,
    NOTIFY_WELCOME,
)
from usermgmt_server.notifier.markers import ClaimResult, NotificationMarkers
from usermgmt_server.notifier.resources import PipelineInfo, ensure_email_identity
from usermgmt_server.notifier.worker import NotifierWorker, Outcome


async def poll_until(worker: NotifierWorker, outcome: Outcome, *, seconds: float = 6.0) -> None:
    """Poll until the worker has reached ``outcome`` once more (messages come back after the 1 s
    visibility timeout)."""
    target = worker.outcomes[outcome] + 1
    deadline = time.monotonic() + seconds
    while worker.outcomes[outcome] < target:
        assert time.monotonic() < deadline, dict(worker.outcomes)
        if await worker.poll_once() == 0:
            await asyncio.sleep(0.2)


async def test_an_email_notification_is_sent_through_ses_and_deleted(
    make_worker: WorkerFactory,
    publish,
    messaging: AwsClients,
    pipeline: PipelineInfo,
    marker_table: str,
) -> None:
    event = notification(NOTIFY_VERIFICATION_CODE, code="424242")
    await publish(event)
    worker = make_worker()

    assert await worker.poll_once() == 1

    assert worker.outcomes == {Outcome.SENT: 1}
    [mail] = sent_emails(str(event.data["recipient"]))
    assert mail["source"] == FROM_ADDRESS
    assert mail["subject"] == "Your usermgmt verification code"
    assert "424242" in mail["body"] and mail["body"].startswith("<!DOCTYPE html>")
    assert await queue_depth(messaging, pipeline.queue_url) == 0
    markers = NotificationMarkers(messaging.dynamodb, marker_table)
    assert await markers.state(event.event_id) == "sent"


async def test_an_sms_notification_is_published_through_sns(
    make_worker: WorkerFactory, publish
) -> None:
    event = notification(NOTIFY_PASSWORD_RESET_CODE, channel="sms", code="777111")
    await publish(event)

    assert await make_worker().poll_once() == 1

    [sms] = sent_sms(str(event.data["recipient"]))
    assert sms["message"].startswith("usermgmt password reset code 777111 (valid 15 min)")
    assert len(sms["message"]) <= 160


async def test_the_same_event_delivered_twice_sends_one_email(
    make_worker: WorkerFactory, publish, messaging: AwsClients, pipeline
) -> None:
    event = notification(NOTIFY_WELCOME)
    await publish(event)
    await publish(event)
    worker = make_worker()

    while await worker.poll_once():
        pass

    assert worker.outcomes[Outcome.SENT] == 1
    # The copy is dropped at once, or waits for the first one's claim and is dropped later.
    if worker.outcomes[Outcome.DUPLICATE] == 0:
        await poll_until(worker, Outcome.DUPLICATE)
    assert len(sent_emails(str(event.data["recipient"]))) == 1
    assert await queue_depth(messaging, pipeline.queue_url) == 0


async def test_a_second_worker_drops_what_the_first_sent(
    make_worker: WorkerFactory, messaging: AwsClients, pipeline: PipelineInfo
) -> None:
    event = notification(NOTIFY_VERIFICATION_CODE)
    for _ in range(2):
        await messaging.sqs.send_message(
            QueueUrl=pipeline.queue_url, MessageBody=message_body(event)
        )
    first, second = make_worker(), make_worker()

    await poll_until(first, Outcome.SENT)
    await poll_until(second, Outcome.DUPLICATE)

    assert len(sent_emails(str(event.data["recipient"]))) == 1


async def test_an_sns_envelope_is_accepted_when_raw_delivery_is_off(
    make_worker: WorkerFactory, messaging: AwsClients, pipeline: PipelineInfo
) -> None:
    event = notification(NOTIFY_WELCOME, channel="sms")
    envelope = {"Type": "Notification", "MessageId": "m-1", "Message": message_body(event)}
    await messaging.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=json.dumps(envelope))

    await make_worker().poll_once()

    assert len(sent_sms(str(event.data["recipient"]))) == 1


async def test_a_poison_message_is_never_sent_and_ends_in_the_dead_letter_queue(
    make_worker: WorkerFactory, messaging: AwsClients, pipeline: PipelineInfo, publish
) -> None:
    await messaging.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody="{not json")
    await publish(notification("usermgmt.notification.unknown_kind.v1"))
    worker = make_worker()

    deadline = time.monotonic() + 10
    while await queue_depth(messaging, pipeline.dlq_url) < 2:
        assert time.monotonic() < deadline, dict(worker.outcomes)
        if await worker.poll_once() == 0:
            await asyncio.sleep(0.2)

    # max_receive_count=2: each was received twice, then moved on the next receive.
    assert worker.outcomes == {Outcome.POISON: 4}
    assert await queue_depth(messaging, pipeline.queue_url) == 0
    moved = await messaging.sqs.receive_message(QueueUrl=pipeline.dlq_url, MaxNumberOfMessages=10)
    assert {message["Body"][:9] for message in moved["Messages"]} == {"{not json", '{"data":{'}


async def test_a_failed_send_releases_the_claim_and_a_later_attempt_sends_once(
    make_worker: WorkerFactory,
    publish,
    messaging: AwsClients,
    marker_table: str,
) -> None:
    sender = f"unverified-{time.monotonic_ns()}@notifier.test"
    event = notification(NOTIFY_VERIFICATION_CODE)
    await publish(event)
    worker = make_worker(from_address=sender)

    await worker.poll_once()

    assert worker.outcomes == {Outcome.FAILED: 1}
    markers = NotificationMarkers(messaging.dynamodb, marker_table)
    assert await markers.state(event.event_id) is None
    assert sent_emails(str(event.data["recipient"])) == []

    await ensure_email_identity(messaging.sesv2, sender)
    await poll_until(worker, Outcome.SENT)

    [mail] = sent_emails(str(event.data["recipient"]))
    assert mail["source"] == sender
    assert await markers.state(event.event_id) == "sent"


async def test_a_claim_left_by_a_crash_is_taken_over_after_its_lease(
    make_worker: WorkerFactory,
    publish,
    messaging: AwsClients,
    marker_table: str,
    clock: ManualClock,
) -> None:
    event = notification(NOTIFY_VERIFICATION_CODE)
    await publish(event)
    crashed = NotificationMarkers(messaging.dynamodb, marker_table)
    claim = await crashed.claim(event.event_id, clock.now(), timedelta(seconds=30))
    assert claim is ClaimResult.CLAIMED
    worker = make_worker()

    await worker.poll_once()
    assert worker.outcomes == {Outcome.IN_PROGRESS: 1}
    assert sent_emails(str(event.data["recipient"])) == []

    clock.advance(seconds=31)
    await poll_until(worker, Outcome.SENT)
    assert len(sent_emails(str(event.data["recipient"]))) == 1


async def test_an_expired_code_is_dropped_unsent(
    make_worker: WorkerFactory,
    publish,
    messaging: AwsClients,
    pipeline: PipelineInfo,
    clock: ManualClock,
) -> None:
    event = notification(NOTIFY_PASSWORD_RESET_CODE)
    await publish(event)
    clock.advance(timedelta(minutes=20))

    await make_worker().poll_once()

    assert sent_emails(str(event.data["recipient"])) == []
    assert await queue_depth(messaging, pipeline.queue_url) == 0


async def test_run_stops_promptly_during_a_long_poll(make_worker: WorkerFactory) -> None:
    worker = make_worker(wait_seconds=20)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.3)

    worker.stop()

    await asyncio.wait_for(task, timeout=2)


async def test_run_delivers_until_stopped(make_worker: WorkerFactory, publish) -> None:
    worker = make_worker(wait_seconds=1)
    task = asyncio.create_task(worker.run())
    event = notification(NOTIFY_WELCOME)
    await publish(event)
    try:
        deadline = time.monotonic() + 5
        while not sent_emails(str(event.data["recipient"])):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=3)


async def test_logs_name_the_event_but_never_the_recipient_or_code(
    make_worker: WorkerFactory,
    publish,
    messaging: AwsClients,
    pipeline: PipelineInfo,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="usermgmt_server")
    sent = notification(NOTIFY_VERIFICATION_CODE, code="246802")
    failed = notification(NOTIFY_PASSWORD_RESET_CODE, code="864200")
    poison = {**to_cloudevent(notification(code="975310")), "type": "usermgmt.notification.x.v1"}
    await publish(sent)
    await messaging.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=json.dumps(poison))
    await make_worker().poll_once()
    await publish(failed)
    await make_worker(from_address="unverified@nowhere.test").poll_once()

    records = [r for r in caplog.records if r.name.startswith("usermgmt_server")]
    logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in records)
    assert {r.__dict__.get("outcome") for r in records} >= {"sent", "poison", "failed"}
    for event in (sent, failed):
        assert event.event_id in logged
        assert str(event.data["recipient"]) not in logged
        assert str(event.data["code"]) not in logged
    assert poison["id"] in logged and "975310" not in logged
    assert "unverified@nowhere.test" not in logged
