"""The notifier behind the topic: codes really leave through SES, a request delivered twice is
mailed once, and a message that can never be delivered ends in the dead-letter queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.harness import (
    FROM_ADDRESS,
    PASSWORD,
    TOPIC_ARN,
    Api,
    RunningServer,
    emails_to,
    notification_ids,
    notifier_under_test,
    receive_all,
    running_server,
    sent_emails,
    unique,
    wait_for,
)
from usermgmt.v1 import user_service_pb2
from usermgmt_server.adapters.events.cloudevents import message_attributes, message_body
from usermgmt_server.domain.events import NOTIFY_VERIFICATION_CODE, NOTIFY_WELCOME, DomainEvent
from usermgmt_server.notifier.worker import Outcome


@pytest.fixture(scope="module")
async def server(moto_endpoint: str) -> AsyncIterator[RunningServer]:
    """A server that requires e-mail verification, so registration sends a code."""
    async with running_server(moto_endpoint, USERMGMT_REQUIRE_EMAIL_VERIFICATION="true") as started:
        yield started


async def test_the_verification_code_goes_out_through_ses(
    server: RunningServer, api: Api, moto_endpoint: str
) -> None:
    async with notifier_under_test(moto_endpoint, server.settings.table_name) as notifier:
        username = unique("mailed")
        user = (await api.register(username, display_name="Mailed Person")).user
        code = server.notifier.last_code(user.user_id)
        sent = notification_ids(server.notifier, user.user_id, NOTIFY_VERIFICATION_CODE)
        assert len(sent) == 1
        assert await notifier.deliver_until_sent(sent)

        await api.users.VerifyEmail(user_service_pb2.VerifyEmailRequest(login=username, code=code))
        sent = notification_ids(server.notifier, user.user_id, NOTIFY_WELCOME)
        assert len(sent) == 1
        assert await notifier.deliver_until_sent(sent)
        await api.login(username, PASSWORD)

    verification, welcome = emails_to(sent_emails(), user.email)
    assert verification["source"] == welcome["source"] == FROM_ADDRESS
    assert "verification code" in str(verification["subject"])
    assert code in str(verification["body"])
    assert username in str(verification["body"])
    assert "Welcome" in str(welcome["subject"])
    assert code not in str(welcome["body"])


def verification_request(recipient: str) -> DomainEvent:
    now = datetime.now(UTC)
    return DomainEvent(
        event_id=str(uuid.uuid4()),
        type=NOTIFY_VERIFICATION_CODE,
        subject=str(uuid.uuid4()),
        time=now,
        data={
            "channel": "email",
            "recipient": recipient,
            "username": recipient.partition("@")[0],
            "display_name": "",
            "code": "482913",
            "expires_at": (now + timedelta(minutes=15)).isoformat(),
        },
    )


async def test_the_same_event_delivered_twice_is_mailed_once(
    server: RunningServer, moto_endpoint: str
) -> None:
    recipient = f"{unique('twice')}@example.com"
    event = verification_request(recipient)
    # A short visibility timeout brings back quickly a copy that met the other's live claim.
    async with notifier_under_test(
        moto_endpoint, server.settings.table_name, visibility_timeout=1
    ) as notifier:
        sns, sqs = notifier.clients.sns, notifier.clients.sqs
        for _ in range(2):
            await sns.publish(
                TopicArn=TOPIC_ARN,
                Message=message_body(event),
                MessageAttributes=message_attributes(event),
            )
        assert await notifier.deliver_until_sent([event.event_id])

        async def both_copies_deleted() -> bool:
            await notifier.deliver_all()
            attributes = await sqs.get_queue_attributes(
                QueueUrl=notifier.pipeline.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
            return not any(int(value) for value in attributes["Attributes"].values())

        assert await wait_for(both_copies_deleted, within=15, every=0.3)
        assert notifier.worker.outcomes[Outcome.DUPLICATE] >= 1
    (mail,) = emails_to(sent_emails(), recipient)
    assert "482913" in str(mail["body"])


async def test_a_poison_message_ends_in_the_dead_letter_queue(
    server: RunningServer, moto_endpoint: str
) -> None:
    poison = "this is not a CloudEvent {" + uuid.uuid4().hex
    async with notifier_under_test(
        moto_endpoint, server.settings.table_name, max_receive_count=2, visibility_timeout=1
    ) as notifier:
        sqs = notifier.clients.sqs
        await sqs.send_message(QueueUrl=notifier.pipeline.queue_url, MessageBody=poison)
        dead: list[str] = []

        async def dead_lettered() -> bool:
            await notifier.worker.poll_once()
            response = await sqs.receive_message(
                QueueUrl=notifier.pipeline.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            dead.extend(m["Body"] for m in response.get("Messages", []))
            return poison in dead

        assert await wait_for(dead_lettered, within=15, every=0.3), "poison never reached the DLQ"
        assert poison not in [
            m["Body"] for m in await receive_all(sqs, notifier.pipeline.queue_url)
        ]
