"""Idempotent delivery: one marker per event id in the service's DynamoDB table.

Item: ``pk = NOTIFIED#<event_id>``, ``sk = NOTIFIER``; ``state`` ("sending" or "sent"),
``owner`` (the claiming notifier), ``lease_until`` (ISO-8601 UTC, fixed width so text order is
time order), ``sent_at`` once sent, and ``expires_at`` (epoch seconds, the table's TTL
attribute; a week by default, far longer than SQS keeps retrying a message).

SQS and SNS deliver at least once and the outbox may publish an event twice, so the same event
can arrive in several messages. Before sending, a notifier claims the event with one conditional
``PutItem``: it wins when there is no marker, or when an earlier claim is still "sending" but
its lease ran out (that notifier crashed between claim and send). A "sent" marker is never
replaced, so a duplicate is dropped; a live claim makes the duplicate wait for its message's
next delivery. A failed send deletes the claim so that the retry can send.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from usermgmt_server.adapters.dynamodb.codec import epoch_seconds, format_time
from usermgmt_server.adapters.dynamodb.errors import (
    CONDITION_FAILED,
    error_code,
    translate_storage_errors,
)
from usermgmt_server.adapters.dynamodb.schema import TTL_ATTRIBUTE

SORT_KEY_VALUE = "NOTIFIER"
SENDING = "sending"
SENT = "sent"
DEFAULT_RETENTION = timedelta(days=7)


class ClaimResult(enum.Enum):
    """What ``claim`` found."""

    CLAIMED = "claimed"
    """The caller may send now."""
    ALREADY_SENT = "already_sent"
    """The event was delivered before: drop the message."""
    IN_PROGRESS = "in_progress"
    """Another delivery holds a live claim: try again later."""


def marker_key(event_id: str) -> dict[str, dict[str, str]]:
    """The primary key of the marker of ``event_id``."""
    return {"pk": {"S": f"NOTIFIED#{event_id}"}, "sk": {"S": SORT_KEY_VALUE}}


class NotificationMarkers:
    """Claims and records deliveries by event id; raises ``StorageUnavailable`` when DynamoDB
    cannot be reached."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        owner: str | None = None,
    ) -> None:
        self._client = dynamodb_client
        self._table = table_name
        self._retention = retention
        self._owner = owner or uuid.uuid4().hex

    async def claim(self, event_id: str, now: datetime, lease: timedelta) -> ClaimResult:
        """Claim the delivery of ``event_id`` until ``now + lease``."""
        item = {
            **marker_key(event_id),
            "state": {"S": SENDING},
            "owner": {"S": self._owner},
            "lease_until": {"S": format_time(now + lease)},
            TTL_ATTRIBUTE: {"N": str(epoch_seconds(now + self._retention))},
        }
        async with translate_storage_errors("claim notification"):
            try:
                await self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk) OR "
                    "(#state = :sending AND lease_until < :now)",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues={
                        ":sending": {"S": SENDING},
                        ":now": {"S": format_time(now)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if error_code(error) != CONDITION_FAILED:
                    raise
                existing = error.response.get("Item") or await self._read(event_id)
                state = existing.get("state", {}).get("S")
                return ClaimResult.ALREADY_SENT if state == SENT else ClaimResult.IN_PROGRESS
        return ClaimResult.CLAIMED

    async def mark_sent(self, event_id: str, now: datetime) -> None:
        """Record that ``event_id`` was delivered (final: no claim replaces it)."""
        item = {
            **marker_key(event_id),
            "state": {"S": SENT},
            "owner": {"S": self._owner},
            "sent_at": {"S": format_time(now)},
            TTL_ATTRIBUTE: {"N": str(epoch_seconds(now + self._retention))},
        }
        async with translate_storage_errors("mark notification sent"):
            await self._client.put_item(TableName=self._table, Item=item)

    async def release(self, event_id: str) -> None:
        """Give up this notifier's claim on ``event_id`` so that a retry can send it.

        Only a "sending" claim of this notifier is deleted: never a "sent" marker, nor a claim
        another notifier took over after this one's lease ran out.
        """
        async with translate_storage_errors("release notification"):
            try:
                await self._client.delete_item(
                    TableName=self._table,
                    Key=marker_key(event_id),
                    ConditionExpression="#state = :sending AND #owner = :me",
                    ExpressionAttributeNames={"#state": "state", "#owner": "owner"},
                    ExpressionAttributeValues={
                        ":sending": {"S": SENDING},
                        ":me": {"S": self._owner},
                    },
                )
            except ClientError as error:
                if error_code(error) != CONDITION_FAILED:
                    raise

    async def state(self, event_id: str) -> str | None:
        """The marker's state ("sending", "sent") or ``None`` when there is none."""
        async with translate_storage_errors("read notification marker"):
            item = await self._read(event_id)
        return item.get("state", {}).get("S")

    async def _read(self, event_id: str) -> dict[str, Any]:
        response = await self._client.get_item(
            TableName=self._table, Key=marker_key(event_id), ConsistentRead=True
        )
        return dict(response.get("Item") or {})


__all__ = ["DEFAULT_RETENTION", "ClaimResult", "NotificationMarkers", "marker_key"]
