"""Queues, redrive policy and the filtered subscription, against moto."""

from __future__ import annotations

import json
import uuid

from tests.notifier.support import notification
from usermgmt_server.adapters.dynamodb.clients import AwsClients
from usermgmt_server.adapters.events.cloudevents import message_body
from usermgmt_server.domain.events import NOTIFY_WELCOME, USER_REGISTERED, DomainEvent
from usermgmt_server.notifier.resources import (
    FILTER_POLICY,
    PipelineInfo,
    ensure_email_identity,
    ensure_notification_pipeline,
)


async def test_the_pipeline_is_created_once_and_converges(
    messaging: AwsClients, topic_arn: str
) -> None:
    name = f"notify-{uuid.uuid4().hex[:12]}"
    first = await ensure_notification_pipeline(messaging, topic_arn, name, max_receive_count=3)
    again = await ensure_notification_pipeline(
        messaging, topic_arn, name, max_receive_count=4, visibility_timeout=45
    )

    assert again == first
    assert first.dlq_url.endswith(f"/{name}-dlq") and first.queue_url.endswith(f"/{name}")
    subscriptions = await messaging.sns.list_subscriptions_by_topic(TopicArn=topic_arn)
    assert [s["SubscriptionArn"] for s in subscriptions["Subscriptions"]] == [
        first.subscription_arn
    ]
    attributes = (
        await messaging.sns.get_subscription_attributes(SubscriptionArn=first.subscription_arn)
    )["Attributes"]
    assert attributes["RawMessageDelivery"] == "true"
    assert json.loads(attributes["FilterPolicy"]) == FILTER_POLICY
    queue = (
        await messaging.sqs.get_queue_attributes(QueueUrl=first.queue_url, AttributeNames=["All"])
    )["Attributes"]
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": first.dlq_arn,
        "maxReceiveCount": 4,
    }
    assert queue["VisibilityTimeout"] == "45"
    [statement] = json.loads(queue["Policy"])["Statement"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": topic_arn}}
    assert statement["Resource"] == first.queue_arn


async def test_only_notification_requests_reach_the_queue(
    messaging: AwsClients, pipeline: PipelineInfo, publish
) -> None:
    wanted = notification(NOTIFY_WELCOME)
    unwanted = DomainEvent(str(uuid.uuid4()), USER_REGISTERED, "user-1", wanted.time, {})
    await publish(unwanted)
    await publish(wanted)

    received = await messaging.sqs.receive_message(
        QueueUrl=pipeline.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )

    assert [message["Body"] for message in received["Messages"]] == [message_body(wanted)]


async def test_an_existing_email_identity_is_fine(messaging: AwsClients) -> None:
    address = f"sender-{uuid.uuid4().hex[:8]}@notifier.test"
    await ensure_email_identity(messaging.sesv2, f"usermgmt <{address}>")
    await ensure_email_identity(messaging.sesv2, address)

    identities = await messaging.sesv2.list_email_identities()
    names = [identity["IdentityName"] for identity in identities["EmailIdentities"]]
    assert names.count(address) == 1
