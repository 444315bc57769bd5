"""Helpers of the notifier tests: notification events as the service writes them, and readers
of what moto delivered.

moto keeps every e-mail sent through SES (v1 or v2; v2 goes through the v1 backend) in its SES
backend's ``sent_messages`` (source, destinations, subject and body: the HTML part when there
is one) and every SMS published through SNS in its SNS backend's ``sms_messages`` (message id ->
phone number and text). The session's moto server runs in this process, so the readers below
look at those backends directly. The same records are served over HTTP by
``/moto-api/data.json`` (models ``ses.Message`` and ``sns.SMS``), but that endpoint serialises
every model moto ever tracked, DynamoDB items included: after the end-to-end suite one call
takes seconds. The readers filter by recipient, which every test makes unique.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from usermgmt_server.adapters.dynamodb.clients import AwsClients
from usermgmt_server.adapters.security.system import ManualClock
from usermgmt_server.domain.events import (
    NOTIFY_PASSWORD_RESET_CODE,
    NOTIFY_VERIFICATION_CODE,
    NOTIFY_WELCOME,
    DomainEvent,
)
from usermgmt_server.notifier.markers import NotificationMarkers
from usermgmt_server.notifier.resources import PipelineInfo
from usermgmt_server.notifier.senders import Senders, SesEmailSender, SnsSmsSender
from usermgmt_server.notifier.worker import NotifierWorker

AWS_REGION = "us-east-1"
FROM_ADDRESS = "no-reply@notifier.test"
ISSUED_AT = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def unique_email() -> str:
    """An address no other test sends to."""
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def unique_phone() -> str:
    """An E.164 number no other test sends to (with high probability)."""
    return "+1555" + "".join(random.choices("0123456789", k=7))


def notification(
    event_type: str = NOTIFY_VERIFICATION_CODE,
    *,
    channel: str = "email",
    recipient: str | None = None,
    code: str = "123456",
    issued_at: datetime = ISSUED_AT,
    valid_for: timedelta = timedelta(minutes=15),
    **overrides: object,
) -> DomainEvent:
    """A notification request as the service writes it (see ``domain.events``)."""
    data: dict[str, object] = {
        "channel": channel,
        "recipient": recipient or (unique_phone() if channel == "sms" else unique_email()),
        "username": "alice",
        "display_name": "Alice Example",
    }
    if event_type != NOTIFY_WELCOME:
        data["code"] = code
        data["expires_at"] = (issued_at + valid_for).isoformat()
    data.update(overrides)
    return DomainEvent(str(uuid.uuid4()), event_type, "user-1", issued_at, data)


CODE_TYPES = (NOTIFY_VERIFICATION_CODE, NOTIFY_PASSWORD_RESET_CODE)


@dataclass
class WorkerFactory:
    """Builds workers on this test's queue."""

    clients: AwsClients
    pipeline: PipelineInfo
    table: str
    clock: ManualClock

    def __call__(
        self, *, from_address: str = FROM_ADDRESS, wait_seconds: int = 0
    ) -> NotifierWorker:
        return NotifierWorker(
            self.clients.sqs,
            self.pipeline.queue_url,
            Senders(
                email=SesEmailSender(self.clients.sesv2, from_address),
                sms=SnsSmsSender(self.clients.sns),
            ),
            NotificationMarkers(self.clients.dynamodb, self.table),
            self.clock,
            wait_seconds=wait_seconds,
            visibility_timeout=1,
        )


def sent_emails(recipient: str) -> list[dict[str, Any]]:
    """The e-mails moto's SES accepted for ``recipient`` (source, destinations, subject, body)."""
    backend = ses_backends[DEFAULT_ACCOUNT_ID][AWS_REGION]
    return [
        {
            "source": message.source,
            "destinations": message.destinations,
            "subject": message.subject,
            "body": message.body,
        }
        for message in list(backend.sent_messages)
        if recipient in getattr(message, "destinations", {}).get("ToAddresses", [])
    ]


def sent_sms(phone_number: str) -> list[dict[str, str]]:
    """The SMS moto's SNS accepted for ``phone_number`` (phone_number, message)."""
    backend = sns_backends[DEFAULT_ACCOUNT_ID][AWS_REGION]
    return [
        {"phone_number": number, "message": text}
        for number, text in list(backend.sms_messages.values())
        if number == phone_number
    ]


async def queue_depth(clients: AwsClients, queue_url: str) -> int:
    """Messages in the queue, visible or in flight."""
    response = await clients.sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    attributes = response["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )
