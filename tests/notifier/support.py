"""Helpers of the notifier tests: notification events as the service writes them, and readers
of what moto delivered.

moto keeps every e-mail sent through SES (v1 or v2) as an ``ses.Message`` model (source,
destinations, subject and body: the HTML part when there is one) and every SMS published
through SNS as an ``sns.SMS`` model (phone number, message). Its ``/moto-api/data.json`` endpoint
returns all models over HTTP; the readers below filter them by recipient, which every test makes
unique.
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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


def _model_data(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as response:
        return json.load(response)


async def sent_emails(endpoint: str, recipient: str) -> list[dict[str, Any]]:
    """The e-mails moto's SES accepted for ``recipient`` (dicts: source, destinations,
    subject, body)."""
    data = await asyncio.to_thread(_model_data, endpoint)
    return [
        message
        for message in data.get("ses", {}).get("Message", [])
        if recipient in message.get("destinations", {}).get("ToAddresses", [])
    ]


async def sent_sms(endpoint: str, phone_number: str) -> list[dict[str, Any]]:
    """The SMS moto's SNS accepted for ``phone_number`` (dicts: phone_number, message)."""
    data = await asyncio.to_thread(_model_data, endpoint)
    return [
        message
        for message in data.get("sns", {}).get("SMS", [])
        if message.get("phone_number") == phone_number
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
