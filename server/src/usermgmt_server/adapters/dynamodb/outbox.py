"""The transactional outbox on the service's DynamoDB table (item layout in ``schema``).

Writers (the repository and the stores) add one ``Put`` per event to the ``TransactWriteItems``
of the change the events describe (``event_puts``), so an event exists exactly when its change
was committed. ``DynamoOutbox`` is the reading side used by the relay and the sweeper.

Events are spread over ``OUTBOX_SHARD_COUNT`` partitions (``OUTBOX#00`` ..) by a stable hash of
the event id, so a burst of writes never makes one partition key hot; within a shard the sort
key ``<time>#<event_id>`` orders events by time. The cost is one query per shard to find what is
pending, and no global order: ``pending`` merges what it read from every shard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from usermgmt_server.adapters.dynamodb import codec
from usermgmt_server.adapters.dynamodb.batches import batch_write
from usermgmt_server.adapters.dynamodb.codec import Item
from usermgmt_server.adapters.dynamodb.errors import translate_storage_errors
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.ports import OutboxBacklog

_NOT_EXISTS = "attribute_not_exists(pk)"

_T = TypeVar("_T")


def event_puts(table_name: str, events: Sequence[DomainEvent]) -> list[dict[str, Any]]:
    """The transaction items that write ``events`` to the outbox.

    Each ``Put`` requires that no item has the event's key: an event id is never reused, so a
    failed condition is a bug and the caller reports it as ``UnexpectedCondition``.
    """
    return [
        {
            "Put": {
                "TableName": table_name,
                "Item": codec.event_to_item(event),
                "ConditionExpression": _NOT_EXISTS,
            }
        }
        for event in events
    ]


class DynamoOutbox:
    """Events written by committed transactions and not yet published (``Outbox``).

    ``shard_count`` must be the count the writers use (``codec.OUTBOX_SHARD_COUNT``): it decides
    which partitions are read and where ``remove`` looks for an event.
    """

    def __init__(
        self, client: Any, table_name: str, *, shard_count: int = codec.OUTBOX_SHARD_COUNT
    ) -> None:
        if not 1 <= shard_count <= 100:
            raise ValueError("shard_count must be between 1 and 100")
        self._client = client
        self._table = table_name
        self._shard_count = shard_count
        # The shard that gets the first share of a limit smaller than the shard count; it moves
        # on every call so that no shard waits behind the others for long.
        self._first_shard = 0

    async def pending(self, *, written_before: datetime, limit: int) -> list[DomainEvent]:
        """Up to ``limit`` events with a time strictly before ``written_before``.

        Each shard is read oldest first; the limit is shared out among the shards that still
        have events, round by round, so one shard with a long backlog cannot crowd out the
        others. The result is ordered by time (then event id).
        """
        if limit < 1:
            raise ValueError("limit must be positive")
        before = codec.format_time(written_before)
        first = self._first_shard
        self._first_shard = (first + 1) % self._shard_count
        order = [(first + offset) % self._shard_count for offset in range(self._shard_count)]
        # shard -> where its next query resumes (None: at its start)
        active: dict[int, Item | None] = dict.fromkeys(order)
        items: list[Item] = []
        async with translate_storage_errors("read outbox"):
            while active and len(items) < limit:
                shares = _share(limit - len(items), list(active))
                pages = await _all(
                    *(
                        self._client.query(
                            **self._pending_query(shard, before, size, active[shard])
                        )
                        for shard, size in shares.items()
                    )
                )
                for shard, page in zip(shares, pages, strict=True):
                    found = page.get("Items", [])
                    items.extend(found)
                    # A page may also stop early at 1 MB; it then resumes where it stopped.
                    resume = page.get("LastEvaluatedKey")
                    if resume:
                        active[shard] = resume
                    else:
                        del active[shard]
        events = [codec.event_from_item(item) for item in items[:limit]]
        events.sort(key=lambda event: (event.time, event.event_id))
        return events

    async def remove(self, events: Sequence[DomainEvent]) -> None:
        """Delete the items of ``events`` with ``BatchWriteItem`` (25 a call); removing an
        event that is already gone, or the same event twice, is fine."""
        # BatchWriteItem refuses a call that names one key twice.
        keys = {event.event_id: codec.outbox_key(event, self._shard_count) for event in events}
        requests = [{"DeleteRequest": {"Key": key}} for key in keys.values()]
        await batch_write(self._client, self._table, requests, "remove outbox events")

    async def backlog(self) -> OutboxBacklog:
        """How many events wait in all shards and the time of the oldest.

        Counting reads every waiting item (``Select=COUNT`` saves the transfer, not the read
        capacity), so call it at the sweeper's pace, not per request.
        """
        async with translate_storage_errors("measure outbox"):
            shards = await _all(*(self._shard_backlog(shard) for shard in range(self._shard_count)))
        count = sum(shard_count for shard_count, _ in shards)
        times = [oldest for _, oldest in shards if oldest is not None]
        return OutboxBacklog(count=count, oldest=min(times) if times else None)

    # -- helpers ------------------------------------------------------------------------------

    def _pending_query(
        self, shard: int, before: str, limit: int, start: Item | None
    ) -> dict[str, Any]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk AND #sk < :before",
            "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
            "ExpressionAttributeValues": {
                ":pk": {"S": codec.outbox_partition(shard)},
                ":before": {"S": before},
            },
            "ScanIndexForward": True,
            "Limit": limit,
            # A strongly consistent read does not return an event the relay just removed.
            "ConsistentRead": True,
        }
        if start is not None:
            query["ExclusiveStartKey"] = start
        return query

    async def _shard_backlog(self, shard: int) -> tuple[int, datetime | None]:
        key = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": codec.outbox_partition(shard)}},
        }
        first = await self._client.query(**key, ScanIndexForward=True, Limit=1, ConsistentRead=True)
        if not first.get("Items"):
            return 0, None
        oldest = codec.parse_time(first["Items"][0]["time"]["S"])
        count = 0
        start: Item | None = None
        while True:
            request = {**key, "Select": "COUNT"}
            if start is not None:
                request["ExclusiveStartKey"] = start
            page = await self._client.query(**request)
            count += int(page.get("Count", 0))
            start = page.get("LastEvaluatedKey")
            if not start:
                return count, oldest


async def _all(*calls: Awaitable[_T]) -> list[_T]:
    """Run ``calls`` concurrently and wait for every one of them, then raise the first failure
    if any (so that no query outlives the operation that started it)."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast(list[_T], results)


def _share(total: int, shards: list[int]) -> dict[int, int]:
    """Split ``total`` among ``shards`` as evenly as possible, the first ones getting the
    remainder; shards whose share is zero are left out."""
    base, extra = divmod(total, len(shards))
    shares = {shard: base + (1 if index < extra else 0) for index, shard in enumerate(shards)}
    return {shard: size for shard, size in shares.items() if size > 0}


__all__ = ["DynamoOutbox", "event_puts"]
