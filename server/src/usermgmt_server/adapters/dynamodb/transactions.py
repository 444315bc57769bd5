"""``TransactWriteItems`` with retries of conflicts, shared by the repository and the stores."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from botocore.exceptions import ClientError

from usermgmt_server.adapters.dynamodb.errors import (
    TRANSACTION_CANCELED,
    cancellation_codes,
    error_code,
    unavailable,
)

CONDITION_FAILED_REASON = "ConditionalCheckFailed"
# Cancellation reasons that say "try again later" rather than "your condition is false".
TRANSIENT_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


async def transact(
    client: Any, operation: str, items: list[dict[str, Any]], *, attempts: int = 3
) -> list[str | None] | None:
    """Run one transaction: ``None`` when applied, else the cancellation reason codes.

    A cancellation with a failed condition is returned at once (nothing was written). One caused
    only by conflicts with concurrent transactions or throttling is retried ``attempts`` times in
    all, with jittered back-off, and then raised as ``StorageUnavailable``.
    """
    attempts = max(1, attempts)
    for attempt in range(attempts):
        try:
            await client.transact_write_items(TransactItems=items)
            return None
        except ClientError as error:
            if error_code(error) != TRANSACTION_CANCELED:
                raise
            codes = cancellation_codes(error)
            if CONDITION_FAILED_REASON in codes:
                return codes
            if not codes or not set(codes) - {None} <= TRANSIENT_REASONS:
                raise
            if attempt == attempts - 1:
                raise unavailable(operation, error) from error
        # Jittered back-off so that conflicting writers do not collide again in lockstep.
        await asyncio.sleep(random.uniform(0, 0.025 * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def condition_failed(codes: list[str | None], index: int | None) -> bool:
    """Whether the item at ``index`` of a cancelled transaction failed its condition."""
    return index is not None and index < len(codes) and codes[index] == CONDITION_FAILED_REASON


__all__ = ["CONDITION_FAILED_REASON", "TRANSIENT_REASONS", "condition_failed", "transact"]
