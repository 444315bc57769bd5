"""The notifier inside an embedded-mode server: the same pipeline on the in-process emulator.

Messages really go through the emulated SNS, SQS and SES; each one is also printed to the
console (``echo``) so that a developer sees the codes. That printing is the point of embedded
mode and goes to the console only, never to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TextIO

from usermgmt_server.adapters.dynamodb.clients import AwsClients
from usermgmt_server.adapters.security.system import SystemClock
from usermgmt_server.domain.ports import Clock
from usermgmt_server.notifier.markers import NotificationMarkers
from usermgmt_server.notifier.resources import ensure_email_identity, ensure_notification_pipeline
from usermgmt_server.notifier.senders import (
    EmailSender,
    Senders,
    SesEmailSender,
    SmsSender,
    SnsSmsSender,
)
from usermgmt_server.notifier.templates import EmailMessage, SmsMessage
from usermgmt_server.notifier.worker import NotifierWorker

EMBEDDED_QUEUE_NAME = "usermgmt-notifications"


class EchoingEmailSender:
    """Sends through another ``EmailSender``, then prints the message to ``echo``."""

    def __init__(self, inner: EmailSender, echo: TextIO) -> None:
        self._inner = inner
        self._echo = echo

    async def send(self, recipient: str, message: EmailMessage) -> str:
        """Send, then print subject and plain text."""
        message_id = await self._inner.send(recipient, message)
        body = "\n".join("    " + line if line else "" for line in message.text.splitlines())
        print(f"[embedded mail] to {recipient}: {message.subject}\n{body}", file=self._echo)
        self._echo.flush()
        return message_id


class EchoingSmsSender:
    """Sends through another ``SmsSender``, then prints the message to ``echo``."""

    def __init__(self, inner: SmsSender, echo: TextIO) -> None:
        self._inner = inner
        self._echo = echo

    async def send(self, recipient: str, message: SmsMessage) -> str:
        """Send, then print the text."""
        message_id = await self._inner.send(recipient, message)
        print(f"[embedded sms] to {recipient}: {message.text}", file=self._echo)
        self._echo.flush()
        return message_id


async def run_embedded_notifier(
    clients: AwsClients,
    table_name: str,
    topic_arn: str,
    from_address: str,
    stop_event: asyncio.Event,
    echo: TextIO | None = None,
    *,
    clock: Clock | None = None,
    queue_name: str = EMBEDDED_QUEUE_NAME,
    wait_seconds: int = 20,
    visibility_timeout: int = 30,
) -> None:
    """Set up the queues, subscription and sender identity, then deliver notifications until
    ``stop_event`` is set. ``clients`` must have been opened with ``messaging=True``."""
    if clients.sqs is None or clients.sesv2 is None:
        raise ValueError("open the AWS clients with messaging=True")
    pipeline = await ensure_notification_pipeline(
        clients, topic_arn, queue_name, visibility_timeout=visibility_timeout
    )
    await ensure_email_identity(clients.sesv2, from_address)
    email: EmailSender = SesEmailSender(clients.sesv2, from_address)
    sms: SmsSender = SnsSmsSender(clients.sns)
    if echo is not None:
        email, sms = EchoingEmailSender(email, echo), EchoingSmsSender(sms, echo)
    worker = NotifierWorker(
        clients.sqs,
        pipeline.queue_url,
        Senders(email=email, sms=sms),
        NotificationMarkers(clients.dynamodb, table_name),
        clock or SystemClock(),
        wait_seconds=wait_seconds,
        visibility_timeout=visibility_timeout,
    )
    stopper = asyncio.create_task(_stop_when_set(stop_event, worker))
    try:
        await worker.run()
    finally:
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper


async def _stop_when_set(event: asyncio.Event, worker: NotifierWorker) -> None:
    await event.wait()
    worker.stop()


__all__ = [
    "EMBEDDED_QUEUE_NAME",
    "EchoingEmailSender",
    "EchoingSmsSender",
    "run_embedded_notifier",
]
