"""``LoginFailureStore`` on the service's DynamoDB table (item layout in ``schema``).

One counter item per subject. Every change is a single ``UpdateItem`` (or ``DeleteItem``), which
DynamoDB applies atomically, so instances never lose each other's increments. A lock or clear
that comes with outbox events is the same update (or delete) inside a ``TransactWriteItems`` with
the events' items: a lock whose condition fails (nothing would change) writes no event either.

Expiry. A counter lives until its ``expires_at`` (epoch seconds, also the TTL attribute): each
failure moves it to the ``expires_at`` the caller passes, and a counter whose time has passed
reads as zero even before DynamoDB's TTL removes it. A hard lock must outlive any TTL, so
``lock(hard=True)`` REMOVEs ``expires_at``; from then on the item has no TTL and stays until
``clear_failures``. Hence the invariant: an item without ``expires_at`` is hard-locked.

``record_failure`` therefore has three cases, each one conditional ``UpdateItem``:

1. no counter or a live one (``expires_at`` in the future): ``ADD count`` and move
   ``expires_at`` — the only call in the usual case;
2. hard-locked: ``ADD count`` only, so no TTL comes back;
3. expired but not yet removed: start again at one, dropping the old lock.

When the first call's condition fails, the item it returns (``ReturnValuesOnConditionCheckFailure``)
picks case 2 or 3; if that call's condition fails too (a concurrent clear or lock), it starts over
(a few rounds, then ``StorageUnavailable``).

A soft lock only ever moves ``locked_until`` later. It does not lengthen the counter's TTL: the
caller keeps its counter memory longer than its longest lock (the lockout policy's ``memory`` of
a day against a delay of at most minutes), otherwise the lock is forgotten with the counter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from usermgmt_server.adapters.dynamodb import codec
from usermgmt_server.adapters.dynamodb.codec import Item
from usermgmt_server.adapters.dynamodb.errors import (
    CONDITION_FAILED,
    UnexpectedCondition,
    error_code,
    translate_storage_errors,
)
from usermgmt_server.adapters.dynamodb.outbox import event_puts
from usermgmt_server.adapters.dynamodb.repository import UtcClock
from usermgmt_server.adapters.dynamodb.schema import TTL_ATTRIBUTE
from usermgmt_server.adapters.dynamodb.transactions import condition_failed, transact
from usermgmt_server.domain.errors import StorageUnavailable
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.model import LoginFailures
from usermgmt_server.domain.ports import Clock

_NAMES = {
    "#count": "count",
    "#ttl": TTL_ATTRIBUTE,
    "#hard": "hard_locked",
    "#until": "locked_until",
    "#blocked": "blocked_attempts",
}
_TRUE: dict[str, Any] = {"BOOL": True}
_HARD_LOCK = "SET #hard = :true REMOVE #ttl"
# A new item (the counter was cleared meanwhile) expires with its lock.
_SOFT_LOCK = "SET #until = :until, #ttl = if_not_exists(#ttl, :exp)"
_SOFT_LOCK_CONDITION = "(attribute_not_exists(#until) OR #until < :until) AND NOT (#hard = :true)"
_ONE: dict[str, Any] = {"N": "1"}
# Rounds of record_failure before giving up; each round loses only to a concurrent clear or
# lock of the same subject, so more than one round is already rare.
_RECORD_ROUNDS = 5


class DynamoLoginFailureStore:
    """Failed sign-in counters and locks, one item per subject.

    ``client`` is the long-lived aiobotocore DynamoDB client; ``clock`` says when a counter has
    expired.
    """

    def __init__(self, client: Any, table_name: str, *, clock: Clock | None = None) -> None:
        self._client = client
        self._table = table_name
        self._clock: Clock = clock or UtcClock()

    async def get_failures(self, subject: str) -> LoginFailures:
        """The current counter; zeros when none is stored or it has expired."""
        async with translate_storage_errors("get login failures"):
            response = await self._client.get_item(
                TableName=self._table, Key=codec.failures_key(subject), ConsistentRead=True
            )
        item = response.get("Item")
        if item is None or self._expired(item):
            return LoginFailures()
        return codec.failures_from_item(item)

    async def record_failure(self, subject: str, *, expires_at: datetime) -> int:
        """Add one failure and return the new count (see the module docstring for expiry)."""
        now = self._now_seconds()
        expiry: dict[str, Any] = {"N": str(codec.epoch_seconds(expires_at))}
        async with translate_storage_errors("record login failure"):
            for _ in range(_RECORD_ROUNDS):
                count, old = await self._update(
                    subject,
                    "ADD #count :one SET #ttl = :exp",
                    "attribute_not_exists(pk) OR #ttl > :now",
                    {":one": _ONE, ":exp": expiry, ":now": now},
                    return_old=True,
                )
                if count is not None:
                    return count
                # The refused item says which case applies; without it (it vanished, or the
                # service did not return it) both are tried, and at most one condition holds.
                hard = old.get("hard_locked") == _TRUE if old is not None else None
                if hard is not False:
                    count, _ = await self._update(
                        subject, "ADD #count :one", "#hard = :true", {":one": _ONE, ":true": _TRUE}
                    )
                if count is None and hard is not True:
                    count, _ = await self._update(
                        subject,
                        "SET #count = :one, #ttl = :exp REMOVE #until, #hard",
                        "attribute_exists(pk) AND NOT (#ttl > :now) AND NOT (#hard = :true)",
                        {":one": _ONE, ":exp": expiry, ":now": now, ":true": _TRUE},
                    )
                if count is not None:
                    return count
        raise StorageUnavailable(
            "storage is temporarily unavailable (record login failure: contention)"
        )

    async def lock(
        self,
        subject: str,
        *,
        until: datetime | None,
        hard: bool,
        events: Sequence[DomainEvent] = (),
    ) -> bool:
        """Lock for good (``hard``: the counter loses its TTL), or until ``until`` unless an
        existing lock already lasts at least as long.

        The outbox ``events`` are written in the same transaction, and only if the lock changed:
        not when an existing lock lasts at least as long, nor when a hard lock is already set.
        Returns whether the events were written (always True without events).
        """
        if not hard and until is None:
            raise ValueError("a lock that is not hard needs an end")
        if events:
            return await self._lock_with_events(subject, until=until, hard=hard, events=events)
        async with translate_storage_errors("lock sign-in"):
            if hard:
                await self._client.update_item(
                    TableName=self._table,
                    Key=codec.failures_key(subject),
                    UpdateExpression=_HARD_LOCK,
                    ExpressionAttributeNames={"#hard": "hard_locked", "#ttl": TTL_ATTRIBUTE},
                    ExpressionAttributeValues={":true": _TRUE},
                )
                return
            assert until is not None
            await self._update(subject, _SOFT_LOCK, _SOFT_LOCK_CONDITION, _soft_lock_values(until))

    async def record_blocked(self, subject: str) -> None:
        """Count an attempt refused by a lock (a metric; the lock and counter stay as they are)."""
        async with translate_storage_errors("record blocked sign-in"):
            await self._update(
                subject,
                "ADD #blocked :one",
                "attribute_exists(pk)",
                {":one": _ONE},
            )

    async def clear_failures(self, subject: str, *, events: Sequence[DomainEvent] = ()) -> None:
        """Forget the counter and any lock of ``subject``, writing the outbox ``events`` in the
        same transaction."""
        key = codec.failures_key(subject)
        async with translate_storage_errors("clear login failures"):
            if not events:
                await self._client.delete_item(TableName=self._table, Key=key)
                return
            items = [{"Delete": {"TableName": self._table, "Key": key}}]
            items += event_puts(self._table, events)
            if await transact(self._client, "clear login failures", items):
                raise UnexpectedCondition("an event id is already stored")

    # -- helpers ------------------------------------------------------------------------------

    async def _lock_with_events(
        self,
        subject: str,
        *,
        until: datetime | None,
        hard: bool,
        events: Sequence[DomainEvent],
    ) -> bool:
        """The lock as an ``Update`` in one transaction with the events' items.

        Unlike the plain hard lock, a hard lock here is conditional on not being set yet, so a
        repeated hard lock announces nothing.
        """
        if hard:
            expression, condition, values = _HARD_LOCK, "NOT (#hard = :true)", {":true": _TRUE}
        else:
            assert until is not None
            expression, condition = _SOFT_LOCK, _SOFT_LOCK_CONDITION
            values = _soft_lock_values(until)
        used = " ".join((expression, condition))
        update = {
            "Update": {
                "TableName": self._table,
                "Key": codec.failures_key(subject),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {k: v for k, v in _NAMES.items() if k in used},
                "ExpressionAttributeValues": values,
            }
        }
        async with translate_storage_errors("lock sign-in"):
            codes = await transact(
                self._client, "lock sign-in", [update, *event_puts(self._table, events)]
            )
        if codes is None:
            return True
        if condition_failed(codes, 0):
            return False
        raise UnexpectedCondition("an event id is already stored")

    async def _update(
        self,
        subject: str,
        expression: str,
        condition: str,
        values: Item,
        *,
        return_old: bool = False,
    ) -> tuple[int | None, Item | None]:
        """One conditional update: (the new count, None), or (None, the item as it was if
        ``return_old``) when the condition failed."""
        used = " ".join((expression, condition))
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": codec.failures_key(subject),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {k: v for k, v in _NAMES.items() if k in used},
            "ExpressionAttributeValues": values,
            "ReturnValues": "UPDATED_NEW",
        }
        if return_old:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            response = await self._client.update_item(**request)
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise
            return None, error.response.get("Item")
        count = response.get("Attributes", {}).get("count")
        return (int(count["N"]) if count is not None else 0), None

    def _now_seconds(self) -> dict[str, Any]:
        return {"N": str(int(self._clock.now().timestamp()))}

    def _expired(self, item: Item) -> bool:
        expires_at = codec.expires_at(item)
        return expires_at is not None and expires_at <= int(self._clock.now().timestamp())


def _soft_lock_values(until: datetime) -> Item:
    return {
        ":until": {"S": codec.format_time(until)},
        ":exp": {"N": str(codec.epoch_seconds(until))},
        ":true": _TRUE,
    }


__all__ = ["DynamoLoginFailureStore"]
