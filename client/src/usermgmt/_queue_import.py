"""Creating accounts from an SQS queue: each message is one import row, a JSON object.

Messages are received ten at a time and sent in one ImportUsers call. A message is deleted
once its row was created or found to exist. A message that cannot become an account (not a
JSON object, an unknown field, or a row the service calls INVALID) is sent to the queue's
dead-letter queue, the one its redrive policy names, with the reason in the message attributes
``usermgmt-import-reason`` and ``usermgmt-import-message``, and then deleted. A row the service
could not process now (FAILED, or the whole call UNAVAILABLE) is left alone: SQS delivers it
again after the visibility timeout, and after ``maxReceiveCount`` receives the redrive policy
moves it to the dead-letter queue itself. Delivery is at least once: a message received twice
is imported twice, and the second time its row EXISTS.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from usermgmt._aws import AwsError, describe
from usermgmt._errors import DeadlineExceeded, Unavailable
from usermgmt._rows import RowError, imported_user
from usermgmt._users import UsersClient
from usermgmt.v1 import user_service_pb2

REASON_ATTRIBUTE = "usermgmt-import-reason"
MESSAGE_ATTRIBUTE = "usermgmt-import-message"
# SQS allows 10 attributes per message; the two above are added to the original ones.
_KEPT_ATTRIBUTES = 8
_RECEIVE_MAX = 10
_DONE = {user_service_pb2.IMPORT_OUTCOME_CREATED, user_service_pb2.IMPORT_OUTCOME_EXISTS}


@dataclass
class QueueTally:
    """What became of the messages received so far."""

    created: int = 0
    exists: int = 0
    dead_lettered: int = 0
    left: int = 0


class QueueImporter:
    """Polls ``queue_url`` with the boto3 ``sqs`` client and imports each message's row.

    ``on_dead_letter(message_id, reason, text)`` is told about each message sent to the
    dead-letter queue. The queue must have a redrive policy (``AwsError`` otherwise).
    """

    def __init__(
        self,
        users: UsersClient,
        sqs: Any,
        queue_url: str,
        *,
        wait_seconds: int = 20,
        timeout: float | None = None,
        on_dead_letter: Callable[[str, str, str], None] = lambda *_: None,
    ) -> None:
        self._users = users
        self._sqs = sqs
        self._queue_url = queue_url
        self._wait_seconds = wait_seconds
        self._timeout = timeout
        self._on_dead_letter = on_dead_letter
        self._dead_letter_url = ""
        self.tally = QueueTally()

    async def run(self, stop: asyncio.Event, *, until_empty: bool = False) -> QueueTally:
        """Poll until ``stop`` is set, or (``until_empty``) until a receive finds nothing."""
        self._dead_letter_url = await self._aws(self._queue_url, self._find_dead_letter_queue)
        while not stop.is_set():
            received = await self.poll_once()
            if not received and until_empty:
                break
        return self.tally

    async def poll_once(self) -> int:
        """Receive one batch of messages and import them; how many were received."""
        response = await self._aws(
            self._queue_url,
            self._sqs.receive_message,
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=_RECEIVE_MAX,
            WaitTimeSeconds=self._wait_seconds,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        rows, done = [], []
        for message in messages:
            try:
                rows.append((message, _row(message["Body"])))
            except RowError as error:
                await self._dead_letter(message, "UNREADABLE_ROW", str(error))
                done.append(message)
        if rows:
            done += await self._import(rows)
        await self._delete(done)
        return len(messages)

    async def _import(
        self, rows: list[tuple[dict[str, Any], user_service_pb2.ImportedUser]]
    ) -> list[dict[str, Any]]:
        """Import the rows; the messages that are finished with."""
        try:
            response = await self._users.import_users(
                [user for _, user in rows], timeout=self._timeout
            )
        except (Unavailable, DeadlineExceeded):
            self.tally.left += len(rows)
            return []
        done = []
        for result in response.results:
            message = rows[result.index][0]
            if result.outcome in _DONE:
                created = result.outcome == user_service_pb2.IMPORT_OUTCOME_CREATED
                self.tally.created += created
                self.tally.exists += not created
                done.append(message)
            elif result.outcome == user_service_pb2.IMPORT_OUTCOME_INVALID:
                await self._dead_letter(message, result.reason, result.message)
                done.append(message)
            else:
                self.tally.left += 1
        return done

    async def _dead_letter(self, message: dict[str, Any], reason: str, text: str) -> None:
        attributes = dict(list(message.get("MessageAttributes", {}).items())[:_KEPT_ATTRIBUTES])
        attributes[REASON_ATTRIBUTE] = {"DataType": "String", "StringValue": reason}
        attributes[MESSAGE_ATTRIBUTE] = {"DataType": "String", "StringValue": text or reason}
        request: dict[str, Any] = {
            "QueueUrl": self._dead_letter_url,
            "MessageBody": message["Body"],
            "MessageAttributes": attributes,
        }
        if self._dead_letter_url.endswith(".fifo"):
            group = message.get("Attributes", {}).get("MessageGroupId", "usermgmt-import")
            request.update(MessageGroupId=group, MessageDeduplicationId=message["MessageId"])
        await self._aws(self._dead_letter_url, self._sqs.send_message, **request)
        self.tally.dead_lettered += 1
        self._on_dead_letter(message["MessageId"], reason, text)

    async def _delete(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
        ]
        await self._aws(
            self._queue_url,
            self._sqs.delete_message_batch,
            QueueUrl=self._queue_url,
            Entries=entries,
        )

    def _find_dead_letter_queue(self) -> str:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["RedrivePolicy"]
        ).get("Attributes", {})
        if "RedrivePolicy" not in attributes:
            raise AwsError(
                f"{self._queue_url}: the queue has no dead-letter queue (RedrivePolicy); "
                "give it one, so that rows that cannot be imported have somewhere to go"
            )
        arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
        *_, account, name = arn.split(":")
        return self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]

    async def _aws(self, resource: str, call: Callable[..., Any], **arguments: Any) -> Any:
        """Run a blocking boto3 call in a thread; its failures become ``AwsError``."""
        try:
            return await asyncio.to_thread(call, **arguments)
        except AwsError:
            raise
        except Exception as error:
            if type(error).__module__.startswith(("botocore", "boto3")):
                raise describe(resource, error) from error
            raise


def _row(body: str) -> user_service_pb2.ImportedUser:
    try:
        fields = json.loads(body)
    except json.JSONDecodeError as error:
        raise RowError(f"not JSON: {error.msg}") from None
    if not isinstance(fields, dict):
        raise RowError("not a JSON object")
    return imported_user(fields)
