"""The notifier's queues and subscription (for local runs, embedded mode and tests).

In production Terraform owns these; ``ensure_notification_pipeline`` builds the same shape and
converges an existing setup to it, so it is safe to run again or from several processes:

- ``<queue>-dlq``: the dead-letter queue (messages kept 14 days);
- ``<queue>``: the work queue, whose redrive policy moves a message to the DLQ after
  ``max_receive_count`` receives, and whose policy lets only the topic send to it;
- an SQS subscription of the topic with raw delivery (the body is the CloudEvent itself) and a
  filter on the ``event_type`` message attribute, so only notification requests arrive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from botocore.exceptions import ClientError

from usermgmt_server.adapters.dynamodb.clients import AwsClients
from usermgmt_server.adapters.dynamodb.errors import error_code, translate_storage_errors
from usermgmt_server.domain.events import NOTIFICATION_PREFIX

DLQ_SUFFIX = "-dlq"
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
FILTER_POLICY = {"event_type": [{"prefix": NOTIFICATION_PREFIX}]}


@dataclass(frozen=True, slots=True)
class PipelineInfo:
    """What exists after ``ensure_notification_pipeline``."""

    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    subscription_arn: str


async def ensure_notification_pipeline(
    clients: AwsClients,
    topic_arn: str,
    queue_name: str,
    *,
    max_receive_count: int = 5,
    visibility_timeout: int = 30,
) -> PipelineInfo:
    """Create (or update) the DLQ, the queue and the topic's subscription to it.

    ``clients`` must have been opened with ``messaging=True``. Raises ``StorageUnavailable``
    when AWS cannot be reached.
    """
    sqs, sns = clients.sqs, clients.sns
    if sqs is None:
        raise ValueError("open the AWS clients with messaging=True")
    async with translate_storage_errors("create notification pipeline"):
        dlq_url, dlq_arn = await _queue(
            sqs, queue_name + DLQ_SUFFIX, {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
        )
        queue_url, queue_arn = await _queue(sqs, queue_name, {})
        await sqs.set_queue_attributes(
            QueueUrl=queue_url,
            Attributes={
                "VisibilityTimeout": str(visibility_timeout),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
                ),
                "Policy": json.dumps(_queue_policy(queue_arn, topic_arn)),
            },
        )
        subscription_arn = await _subscribe(sns, topic_arn, queue_arn)
    return PipelineInfo(queue_url, queue_arn, dlq_url, dlq_arn, subscription_arn)


async def ensure_email_identity(sesv2_client: Any, from_address: str) -> None:
    """Create the SES identity of the sender address (an existing one is fine).

    Emulators (moto) refuse to send from an unverified address; against real SES this starts
    the verification (SES mails the address a link), which production does through Terraform.
    """
    _, address = parseaddr(from_address)
    async with translate_storage_errors("create e-mail identity"):
        try:
            await sesv2_client.create_email_identity(EmailIdentity=address or from_address)
        except ClientError as error:
            if error_code(error) != "AlreadyExistsException":
                raise


async def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    # CreateQueue without attributes returns an existing queue whatever its settings; the
    # settings are then applied separately, so a changed setting converges instead of failing.
    url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
    if attributes:
        await sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    described = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, described["Attributes"]["QueueArn"]


def _queue_policy(queue_arn: str, topic_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowNotificationTopic",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }


async def _subscribe(sns: Any, topic_arn: str, queue_arn: str) -> str:
    attributes = {
        "RawMessageDelivery": "true",
        # The policy before its scope: SNS refuses a scope for a subscription without a policy.
        "FilterPolicy": json.dumps(FILTER_POLICY),
        "FilterPolicyScope": "MessageAttributes",
    }
    existing = await _find_subscription(sns, topic_arn, queue_arn)
    if existing is None:
        response = await sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        return str(response["SubscriptionArn"])
    for name, value in attributes.items():
        await sns.set_subscription_attributes(
            SubscriptionArn=existing, AttributeName=name, AttributeValue=value
        )
    return existing


async def _find_subscription(sns: Any, topic_arn: str, queue_arn: str) -> str | None:
    paginator = sns.get_paginator("list_subscriptions_by_topic")
    async for page in paginator.paginate(TopicArn=topic_arn):
        for subscription in page.get("Subscriptions", []):
            if subscription.get("Protocol") == "sqs" and subscription.get("Endpoint") == queue_arn:
                return str(subscription["SubscriptionArn"])
    return None


__all__ = ["FILTER_POLICY", "PipelineInfo", "ensure_email_identity", "ensure_notification_pipeline"]
