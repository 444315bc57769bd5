"""The embedded emulator's DynamoDB in time independent of the table's size.

moto answers two kinds of request in time that grows with the whole table, which makes a table
filled by registrations or bulk imports slow down quadratically:

- ``TransactWriteItems`` keeps a deep copy of every table a transaction touches, once per
  transaction item, to roll back on cancellation (about five transactions a second at a few
  thousand items). The version here checks every condition first and writes only when all of
  them hold, which is what DynamoDB promises: a cancelled transaction writes nothing. Should a
  write still fail half-way (a malformed update expression), the few items the transaction
  touched are put back from copies taken just before the writes. Cancellation reasons, their
  order and the validation errors are moto's own.
- ``Query`` on the table's own key sorts every item of the table to find one partition. Here it
  is given only the items of the partition it asks for (the outbox sweeper queries its
  partitions every few seconds). Queries of an index are left as they are.

Both rely on the emulator running one DynamoDB request at a time (``embedded``).
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from typing import Any

_TRANSACT_OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})
_MAX_ITEMS = 100

Reason = tuple[str, str, dict[str, Any] | None] | tuple[None, None, None]
# (operation, key, the operation as sent)
Write = tuple[str, dict[str, Any], dict[str, Any]]


def install() -> None:
    """Make every moto DynamoDB backend and table of this process use the versions below."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    if not getattr(Table.query, "reads_one_partition", False):
        Table.query = _partition_query(Table.query)  # type: ignore[method-assign]


def _partition_query(query: Callable[..., Any]) -> Callable[..., Any]:
    """``Table.query`` that, for the table's own key, looks at the asked partition only."""

    signature = inspect.signature(query)

    @functools.wraps(query)
    def partition_query(table: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(table, hash_key, *args, **kwargs).arguments
        if arguments.get("index_name") is not None or hash_key is None:
            return query(table, hash_key, *args, **kwargs)
        partition = table.items.get(hash_key)
        if partition is None:
            items: list[Any] = []
        elif table.range_key_attr:
            items = list(partition.values())
        else:
            items = [partition]
        # moto's query finds the partition by filtering ``all_items()``; for this call that is
        # the partition itself.
        table.all_items = lambda: items
        try:
            return query(table, hash_key, *args, **kwargs)
        finally:
            del table.all_items

    partition_query.reads_one_partition = True  # type: ignore[attr-defined]
    return partition_query


def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """Check every item's condition, then apply every write, or raise moto's cancellation."""
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import MockValidationException

    if len(transact_items) > _MAX_ITEMS:
        raise TooManyTransactionsException()
    targets: set[tuple[str, str]] = set()
    reasons: list[Reason] = []
    writes: list[Write] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException()
        op_type, op = next(iter(entry.items()))
        try:
            if op_type not in _TRANSACT_OPERATIONS:
                raise ValueError("Unsupported transaction operation")
            key = _key(backend, op_type, op)
            target = (str(op["TableName"]), str(dict(sorted(key.items()))))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)
            reason = _condition_failure(backend, op, key)
            writes.append((op_type, key, op))
            reasons.append(reason)
        except MockValidationException:
            raise
        except Exception as error:
            reasons.append((type(error).__name__, str(error), None))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    _apply(backend, writes)


def _key(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    attributes = op["Item"]
    key = {table.hash_key_attr: attributes[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attributes[table.range_key_attr]
    return key


def _condition_failure(backend: Any, op: dict[str, Any], key: dict[str, Any]) -> Reason:
    """``(None, None, None)`` when the item's condition holds (or it has none), else the
    cancellation reason moto reports for it."""
    from moto.dynamodb.models import get_filter_expression

    current = backend.get_item(op["TableName"], key)
    expression = op.get("ConditionExpression")
    if expression is None:
        return (None, None, None)
    condition = get_filter_expression(
        expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    )
    if condition.expr(current):
        return (None, None, None)
    old = None
    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current is not None:
        old = current.to_json()["Attributes"]
    return ("ConditionalCheckFailed", "The conditional request failed", old)


def _apply(backend: Any, writes: list[Write]) -> None:
    from moto.dynamodb.exceptions import TransactionCanceledException
    from moto.dynamodb.models import MockValidationException

    saved = [
        (op["TableName"], key, copy.deepcopy(backend.get_item(op["TableName"], key)))
        for op_type, key, op in writes
        if op_type != "ConditionCheck"
    ]
    for index, (op_type, key, op) in enumerate(writes):
        try:
            _write(backend, op_type, key, op)
        except MockValidationException:
            _restore(backend, saved)
            raise
        except Exception as error:
            _restore(backend, saved)
            reasons: list[Reason] = [(None, None, None)] * len(writes)
            reasons[index] = (type(error).__name__, str(error), None)
            raise TransactionCanceledException(reasons) from error


def _write(backend: Any, op_type: str, key: dict[str, Any], op: dict[str, Any]) -> None:
    # The conditions held a moment ago and nothing has run since (one request at a time), so
    # they hold again; they are passed on because moto rejects unused expression values.
    expression = {
        "condition_expression": op.get("ConditionExpression"),
        "expression_attribute_names": op.get("ExpressionAttributeNames"),
        "expression_attribute_values": op.get("ExpressionAttributeValues"),
    }
    table_name = op["TableName"]
    if op_type == "Put":
        backend.put_item(table_name, op["Item"], **expression)
    elif op_type == "Delete":
        backend.delete_item(table_name, key, **expression)
    elif op_type == "Update":
        backend.update_item(table_name, key, update_expression=op["UpdateExpression"], **expression)


def _restore(backend: Any, saved: list[tuple[str, dict[str, Any], Any]]) -> None:
    for table_name, key, item in reversed(saved):
        if item is None:
            backend.delete_item(table_name, key)
        else:
            backend.put_item(table_name, item.to_json()["Attributes"])
