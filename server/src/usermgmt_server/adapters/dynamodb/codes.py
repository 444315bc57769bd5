"""``CodeStore`` on the service's DynamoDB table (item layout in ``schema``).

One item per user and purpose, so saving a new code replaces the previous one. Attempts are
counted by a single conditional ``UpdateItem`` (``ADD attempts``), which DynamoDB applies
atomically: concurrent guesses on several instances share one count and never exceed the limit.
Validity is decided by the exact ``valid_until`` time; the ``expires_at`` TTL only lets DynamoDB
remove the item some time later. A code saved with outbox events (the request to deliver it) is
written in one ``TransactWriteItems`` with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from usermgmt_server.adapters.dynamodb import codec
from usermgmt_server.adapters.dynamodb.errors import (
    CONDITION_FAILED,
    UnexpectedCondition,
    error_code,
    translate_storage_errors,
)
from usermgmt_server.adapters.dynamodb.outbox import event_puts
from usermgmt_server.adapters.dynamodb.repository import UtcClock
from usermgmt_server.adapters.dynamodb.transactions import transact
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.model import CodePurpose, OneTimeCode
from usermgmt_server.domain.ports import Clock


class DynamoCodeStore:
    """One-time codes, one item per user and purpose.

    ``client`` is the long-lived aiobotocore DynamoDB client; ``clock`` says when a code has
    expired for ``get_code`` (``count_attempt`` is given the time by its caller).
    """

    def __init__(self, client: Any, table_name: str, *, clock: Clock | None = None) -> None:
        self._client = client
        self._table = table_name
        self._clock: Clock = clock or UtcClock()

    async def save_code(self, code: OneTimeCode, *, events: Sequence[DomainEvent] = ()) -> None:
        """Store ``code`` (unconditionally), replacing any code of the same user and purpose,
        together with the outbox ``events`` in one transaction."""
        async with translate_storage_errors("save code"):
            if not events:
                await self._client.put_item(TableName=self._table, Item=codec.code_to_item(code))
                return
            items = [{"Put": {"TableName": self._table, "Item": codec.code_to_item(code)}}]
            if await transact(self._client, "save code", items + event_puts(self._table, events)):
                raise UnexpectedCondition("an event id is already stored")

    async def get_code(self, user_id: str, purpose: CodePurpose) -> OneTimeCode | None:
        """The stored code, or ``None`` when there is none or it has expired."""
        async with translate_storage_errors("get code"):
            response = await self._client.get_item(
                TableName=self._table, Key=codec.code_key(user_id, purpose), ConsistentRead=True
            )
        item = response.get("Item")
        if item is None:
            return None
        code = codec.code_from_item(item)
        return code if code.expires_at > self._clock.now() else None

    async def count_attempt(
        self, user_id: str, purpose: CodePurpose, *, max_attempts: int, now: datetime
    ) -> OneTimeCode | None:
        """Use up one attempt; the code after the increment, or ``None`` when there is no code,
        it has expired at ``now`` or ``max_attempts`` attempts were already made."""
        async with translate_storage_errors("count code attempt"):
            try:
                response = await self._client.update_item(
                    TableName=self._table,
                    Key=codec.code_key(user_id, purpose),
                    UpdateExpression="ADD #attempts :one",
                    ConditionExpression=(
                        "attribute_exists(pk) AND #attempts < :max AND #valid > :now"
                    ),
                    ExpressionAttributeNames={"#attempts": "attempts", "#valid": "valid_until"},
                    ExpressionAttributeValues={
                        ":one": {"N": "1"},
                        ":max": {"N": str(max_attempts)},
                        ":now": {"S": codec.format_time(now)},
                    },
                    ReturnValues="ALL_NEW",
                )
            except ClientError as error:
                if error_code(error) != CONDITION_FAILED:
                    raise
                return None
        return codec.code_from_item(response["Attributes"])

    async def delete_code(self, user_id: str, purpose: CodePurpose) -> None:
        """Remove the code if there is one."""
        async with translate_storage_errors("delete code"):
            await self._client.delete_item(
                TableName=self._table, Key=codec.code_key(user_id, purpose)
            )


__all__ = ["DynamoCodeStore"]
