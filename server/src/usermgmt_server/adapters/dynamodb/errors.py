"""Translation of AWS SDK failures into the domain's ``StorageUnavailable``.

Only failures that say "storage cannot serve you right now" are translated: the connection
could not be made or broke, the call timed out, DynamoDB throttled beyond the client's retries,
DynamoDB itself failed, or the table does not exist. Everything else (validation errors, failed
conditions, programming mistakes) propagates unchanged so that it is handled or seen as a bug.
Messages name the operation and the error code only, never item contents.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from usermgmt_server.domain.errors import StorageUnavailable

# The named classes are listed for the reader; the two base classes also cover their siblings
# (proxy and TLS failures, broken response streams).
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    BotocoreConnectionError,
    HTTPClientError,
)

UNAVAILABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ResourceNotFoundException",
        "TransactionConflictException",
    }
)

TRANSACTION_CANCELED = "TransactionCanceledException"
CONDITION_FAILED = "ConditionalCheckFailedException"


class UnexpectedCondition(RuntimeError):
    """A write condition failed that the domain's rules make impossible.

    For example a guard the account should hold belongs to another account, or a freshly
    generated user id is already stored: a bug or tampered data, not a user error.
    """


def error_code(error: ClientError) -> str:
    """The service's error code of a ``ClientError`` (empty if it has none)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means that storage cannot serve requests right now."""
    if isinstance(error, CONNECTION_ERRORS):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(error) in UNAVAILABLE_ERROR_CODES or int(status) >= 500
    return False


def unavailable(operation: str, error: BaseException) -> StorageUnavailable:
    """A ``StorageUnavailable`` naming the operation and the kind of failure."""
    cause = error_code(error) if isinstance(error, ClientError) else type(error).__name__
    return StorageUnavailable(f"storage is temporarily unavailable ({operation}: {cause})")


@asynccontextmanager
async def translate_storage_errors(operation: str = "DynamoDB") -> AsyncIterator[None]:
    """Turn connection failures, throttling and service errors into ``StorageUnavailable``."""
    try:
        yield
    except (ClientError, *CONNECTION_ERRORS) as error:
        if is_unavailable(error):
            raise unavailable(operation, error) from error
        raise


def cancellation_codes(error: ClientError) -> list[str | None]:
    """Per-item outcome of a cancelled transaction, by position (``None`` = that item was fine)."""
    reasons = error.response.get("CancellationReasons") or []
    codes: list[str | None] = []
    for reason in reasons:
        code = reason.get("Code")
        codes.append(None if code in (None, "", "None") else str(code))
    return codes


__all__ = [
    "CONDITION_FAILED",
    "CONNECTION_ERRORS",
    "TRANSACTION_CANCELED",
    "UNAVAILABLE_ERROR_CODES",
    "UnexpectedCondition",
    "cancellation_codes",
    "error_code",
    "is_unavailable",
    "translate_storage_errors",
    "unavailable",
]
