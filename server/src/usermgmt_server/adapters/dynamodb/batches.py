"""Batch calls on one table: ``BatchWriteItem`` for any number of requests, and the resending
of what a batch call (``BatchWriteItem``, ``BatchGetItem``) leaves unprocessed.

Write requests go out 25 at a time (the call's limit), one call after the other. DynamoDB may
leave part of a batch call unprocessed (throttling, an internal failure) and says so in the
response rather than with an error; that part is sent again after a jittered, growing pause, a
bounded number of times, and what is still left then is reported as ``StorageUnavailable``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from usermgmt_server.adapters.dynamodb.errors import translate_storage_errors
from usermgmt_server.domain.errors import StorageUnavailable

BATCH_WRITE_LIMIT = 25
WRITE_ATTEMPTS = 5
FIRST_RETRY_DELAY = 0.05

WriteRequest = dict[str, Any]
# What a batch call is asked, and what it leaves unprocessed (empty when nothing is left).
Unprocessed = TypeVar("Unprocessed", list[WriteRequest], dict[str, Any])


async def batch_write(
    client: Any,
    table_name: str,
    requests: Sequence[WriteRequest],
    operation: str,
    *,
    attempts: int = WRITE_ATTEMPTS,
) -> None:
    """Apply ``requests`` (``PutRequest``/``DeleteRequest`` items, no two on the same key);
    raises ``StorageUnavailable`` naming ``operation`` when some could not be applied."""

    async def send(batch: list[WriteRequest]) -> list[WriteRequest]:
        response = await client.batch_write_item(RequestItems={table_name: batch})
        return list(response.get("UnprocessedItems", {}).get(table_name, []))

    left = 0
    async with translate_storage_errors(operation):
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            chunk = list(requests[start : start + BATCH_WRITE_LIMIT])
            left += len(await resend_unprocessed(send, chunk, attempts=attempts))
    if left:
        raise StorageUnavailable(
            f"storage is temporarily unavailable ({operation}: {left} requests unprocessed)"
        )


async def resend_unprocessed(
    send: Callable[[Unprocessed], Awaitable[Unprocessed]],
    requests: Unprocessed,
    *,
    attempts: int = WRITE_ATTEMPTS,
    first_delay: float = FIRST_RETRY_DELAY,
) -> Unprocessed:
    """Call ``send`` with ``requests``, then with what it returned as unprocessed, at most
    ``attempts`` times in all, pausing up to ``first_delay``, twice that, ... in between;
    returns what is still unprocessed (empty when nothing is)."""
    left = requests
    for attempt in range(max(1, attempts)):
        if attempt:
            # Jittered so that writers throttled together do not come back in lockstep.
            await asyncio.sleep(random.uniform(0, first_delay * 2 ** (attempt - 1)))
        left = await send(left)
        if not left:
            break
    return left


__all__ = [
    "BATCH_WRITE_LIMIT",
    "FIRST_RETRY_DELAY",
    "WRITE_ATTEMPTS",
    "Unprocessed",
    "batch_write",
    "resend_unprocessed",
]
