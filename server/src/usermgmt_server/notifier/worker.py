"""The notifier's loop: receive notification requests from SQS, deliver each once, delete it.

Per message: parse and validate the CloudEvent, render it, claim its event id, send it through
the channel's sender, mark it sent, delete the message. The queue does the retrying: a message
that is not deleted becomes visible again after the visibility timeout, and after the queue's
``maxReceiveCount`` receives its redrive policy moves it to the dead-letter queue. So:

- sent, or already sent by an earlier delivery (a duplicate): deleted;
- a code that has expired meanwhile: deleted unsent (it could not be used any more);
- a failed send or storage error: the claim is released and the message stays, to be retried;
- poison (not JSON, unknown type, missing fields): never sent, left to reach the DLQ.

Logs name the event id, type, channel and outcome, never a recipient, code or message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from usermgmt_server.adapters.dynamodb.errors import error_code
from usermgmt_server.domain.ports import Clock
from usermgmt_server.notifier.markers import ClaimResult, NotificationMarkers
from usermgmt_server.notifier.notifications import Notification, PoisonMessage, parse_body
from usermgmt_server.notifier.senders import Senders
from usermgmt_server.notifier.templates import EmailMessage, RenderedMessage, SmsMessage, render

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


class Outcome(enum.Enum):
    """What became of one message."""

    SENT = "sent"
    DUPLICATE = "duplicate"
    IN_PROGRESS = "in_progress"
    EXPIRED = "expired"
    FAILED = "failed"
    POISON = "poison"


class NotifierWorker:
    """Delivers the notification requests of one SQS queue.

    ``visibility_timeout`` (seconds) is asked for on every receive and is also the lease of a
    claim: when a notifier dies after claiming, its message and its claim come free together.
    ``outcomes`` counts what became of the messages handled so far.
    """

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        senders: Senders,
        markers: NotificationMarkers,
        clock: Clock,
        *,
        wait_seconds: int = 20,
        batch: int = 10,
        visibility_timeout: int = 30,
    ) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._senders = senders
        self._markers = markers
        self._clock = clock
        self._wait_seconds = wait_seconds
        self._batch = batch
        self._visibility_timeout = visibility_timeout
        self._lease = timedelta(seconds=visibility_timeout)
        self._stop = asyncio.Event()
        self.outcomes: Counter[Outcome] = Counter()

    def stop(self) -> None:
        """Ask ``run`` to return once the batch in hand is handled (a pending poll is dropped)."""
        self._stop.set()

    async def run(self) -> None:
        """Poll and deliver until ``stop``; a failing poll is logged and retried with back-off."""
        failures = 0
        while not self._stop.is_set():
            try:
                await self.poll_once()
            except Exception as error:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2.0 ** (failures - 1))
                if isinstance(error, ClientError | BotoCoreError):
                    logger.warning(
                        "cannot receive notifications; retrying",
                        extra={"error": _describe(error), "retry_in_s": delay},
                    )
                else:
                    logger.exception("notifier poll failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
            else:
                failures = 0

    async def poll_once(self) -> int:
        """Receive one batch (long poll) and handle every message in it; how many there were."""
        messages = await self._receive()
        if messages:
            await asyncio.gather(*(self.handle(message) for message in messages))
        return len(messages)

    async def handle(self, message: Mapping[str, Any]) -> Outcome:
        """Deliver one SQS message (at most once per event id) and say what became of it."""
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            notification = parse_body(str(message.get("Body", "")))
            rendered = render(notification)
        except PoisonMessage as error:
            self.outcomes[Outcome.POISON] += 1
            logger.warning(
                "undeliverable notification left for the dead-letter queue",
                extra={
                    "event_id": error.event_id,
                    "sqs_message_id": message.get("MessageId"),
                    "reason": error.reason,
                    "receive_count": receives,
                    "outcome": Outcome.POISON.value,
                },
            )
            return Outcome.POISON
        try:
            outcome = await self._deliver(notification, rendered, message)
        except Exception as error:
            self._log_failure(notification, "deliver", error)
            outcome = Outcome.FAILED
        self.outcomes[outcome] += 1
        level = logging.WARNING if outcome is Outcome.FAILED else logging.INFO
        logger.log(
            level,
            "notification " + outcome.value,
            extra={
                "event_id": notification.event_id,
                "type": notification.type,
                "channel": notification.channel,
                "receive_count": receives,
                "outcome": outcome.value,
            },
        )
        return outcome

    async def _receive(self) -> list[dict[str, Any]]:
        receive = asyncio.ensure_future(
            self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self._batch,
                WaitTimeSeconds=self._wait_seconds,
                VisibilityTimeout=self._visibility_timeout,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        )
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({receive, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not receive.done():
                # Stopping: whatever the poll would have returned becomes visible again later.
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receive
        if receive.cancelled():
            return []
        return list(receive.result().get("Messages", []))

    async def _deliver(
        self, notification: Notification, rendered: RenderedMessage, message: Mapping[str, Any]
    ) -> Outcome:
        now = self._clock.now()
        if notification.expires_at is not None and notification.expires_at <= now:
            await self._delete(message, notification)
            return Outcome.EXPIRED
        try:
            claim = await self._markers.claim(notification.event_id, now, self._lease)
        except Exception as error:
            self._log_failure(notification, "claim", error)
            return Outcome.FAILED
        if claim is ClaimResult.ALREADY_SENT:
            await self._delete(message, notification)
            return Outcome.DUPLICATE
        if claim is ClaimResult.IN_PROGRESS:
            return Outcome.IN_PROGRESS
        try:
            await self._send(notification, rendered)
        except Exception as error:
            self._log_failure(notification, "send", error)
            try:
                await self._markers.release(notification.event_id)
            except Exception as release_error:
                # The claim then runs out with its lease, as after a crash.
                self._log_failure(notification, "release", release_error)
            return Outcome.FAILED
        try:
            await self._markers.mark_sent(notification.event_id, self._clock.now())
        except Exception as error:
            # Sent all the same; deleting the message still prevents this copy's resend.
            self._log_failure(notification, "mark sent", error)
        await self._delete(message, notification)
        return Outcome.SENT

    async def _send(self, notification: Notification, rendered: RenderedMessage) -> None:
        if isinstance(rendered, EmailMessage):
            await self._senders.email.send(notification.recipient, rendered)
        elif isinstance(rendered, SmsMessage):
            await self._senders.sms.send(notification.recipient, rendered)

    async def _delete(self, message: Mapping[str, Any], notification: Notification) -> None:
        try:
            await self._sqs.delete_message(
                QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except (ClientError, BotoCoreError) as error:
            # The message comes back; its "sent" marker then makes it a duplicate.
            self._log_failure(notification, "delete", error)

    @staticmethod
    def _log_failure(notification: Notification, step: str, error: BaseException) -> None:
        logger.warning(
            "notification step failed",
            extra={
                "event_id": notification.event_id,
                "type": notification.type,
                "channel": notification.channel,
                "step": step,
                "error": _describe(error),
            },
        )


def _describe(error: BaseException) -> str:
    """The kind of failure, without the message text (AWS messages can quote a recipient)."""
    if isinstance(error, ClientError):
        return error_code(error) or type(error).__name__
    cause = getattr(error, "cause", None)
    return f"{type(error).__name__}({cause})" if isinstance(cause, str) else type(error).__name__


__all__ = ["NotifierWorker", "Outcome"]
