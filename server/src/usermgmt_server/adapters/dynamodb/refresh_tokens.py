"""``RefreshTokenStore`` on the service's DynamoDB table (item layout in ``schema``).

A family item records the sign-in (owner, lifetime, revocation); each refresh token is its own
item keyed by the token's keyed hash, with a copy of its family's fields and a ``used`` flag.

A rotation first reads the presented token (to learn its family), then runs one
``TransactWriteItems``: mark the token used on condition that it is still unused and unexpired,
check that the family is neither revoked nor expired, and put the new token. DynamoDB applies all
three or none, so of any number of concurrent rotations of one token exactly one succeeds; the
others find the token used and report ``REUSED``.
"""

from __future__ import annotations

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
from usermgmt_server.adapters.dynamodb.repository import UtcClock
from usermgmt_server.adapters.dynamodb.transactions import condition_failed, transact
from usermgmt_server.domain.model import RefreshFamily, Rotation, RotationOutcome
from usermgmt_server.domain.ports import Clock

_NOT_EXISTS = "attribute_not_exists(pk)"
_LIVE_FAMILY = "attribute_exists(pk) AND #revoked = :false AND #valid > :now"


class DynamoRefreshTokenStore:
    """Refresh-token families and their single-use tokens.

    ``client`` is the long-lived aiobotocore DynamoDB client; ``clock`` decides expiry for
    ``find_family`` (``rotate`` is given the time by its caller).
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        clock: Clock | None = None,
        transaction_attempts: int = 3,
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock: Clock = clock or UtcClock()
        self._transaction_attempts = max(1, transaction_attempts)

    async def create_family(self, family: RefreshFamily, token_hash: str) -> None:
        """Store a new family and its first token in one transaction."""
        items = [
            self._put(codec.family_to_item(family)),
            self._put(codec.refresh_token_to_item(token_hash, family)),
        ]
        async with translate_storage_errors("create refresh family"):
            codes = await transact(
                self._client, "create refresh family", items, attempts=self._transaction_attempts
            )
        if codes is not None:
            raise UnexpectedCondition("a new refresh family or token is already stored")

    async def rotate(self, token_hash: str, new_token_hash: str, now: datetime) -> Rotation:
        """Retire ``token_hash`` and store ``new_token_hash`` in its family, atomically.

        ``ROTATED`` (with the family) when done; ``REUSED`` (with the family) when the token was
        already used, whether earlier or by a concurrent rotation; ``INVALID`` when the token is
        unknown or expired or its family is revoked or expired.
        """
        async with translate_storage_errors("rotate refresh token"):
            item = await self._get_item(codec.refresh_token_key(token_hash))
            if item is None:
                return Rotation(RotationOutcome.INVALID)
            settled = _settled(item, now)
            if settled is not None:
                return settled
            family = codec.family_from_token_item(item)
            codes = await transact(
                self._client,
                "rotate refresh token",
                self._rotation(token_hash, new_token_hash, family, now),
                attempts=self._transaction_attempts,
            )
            if codes is None:
                return Rotation(RotationOutcome.ROTATED, family)
            if not (condition_failed(codes, 0) or condition_failed(codes, 1)):
                raise UnexpectedCondition("a new refresh token is already stored")
            # Lost to a concurrent rotation (the token is used now), or the family is dead.
            item = await self._get_item(codec.refresh_token_key(token_hash))
        if item is None:
            return Rotation(RotationOutcome.INVALID)
        return _settled(item, now) or Rotation(RotationOutcome.INVALID)

    async def find_family(self, token_hash: str) -> RefreshFamily | None:
        """The live family of a token (used or not), or ``None`` when the token is unknown or
        the family is expired or revoked."""
        async with translate_storage_errors("find refresh family"):
            token = await self._get_item(codec.refresh_token_key(token_hash))
            if token is None:
                return None
            item = await self._get_item(codec.family_key(token["family_id"]["S"]))
        if item is None or item["revoked"]["BOOL"]:
            return None
        family = codec.family_from_item(item)
        return family if family.expires_at > self._clock.now() else None

    async def revoke_family(self, family_id: str) -> None:
        """Mark the family revoked, which kills all of its tokens; no error if it is gone."""
        async with translate_storage_errors("revoke refresh family"):
            try:
                await self._client.update_item(
                    TableName=self._table,
                    Key=codec.family_key(family_id),
                    UpdateExpression="SET #revoked = :true",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={"#revoked": "revoked"},
                    ExpressionAttributeValues={":true": {"BOOL": True}},
                )
            except ClientError as error:
                if error_code(error) != CONDITION_FAILED:
                    raise

    # -- helpers ------------------------------------------------------------------------------

    def _rotation(
        self, token_hash: str, new_token_hash: str, family: RefreshFamily, now: datetime
    ) -> list[dict[str, Any]]:
        names = {"#valid": "valid_until"}
        values: Item = {":false": {"BOOL": False}, ":now": {"S": codec.format_time(now)}}
        return [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": codec.refresh_token_key(token_hash),
                    "UpdateExpression": "SET #used = :true",
                    "ConditionExpression": (
                        "attribute_exists(pk) AND #used = :false AND #valid > :now"
                    ),
                    "ExpressionAttributeNames": {**names, "#used": "used"},
                    "ExpressionAttributeValues": {**values, ":true": {"BOOL": True}},
                }
            },
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": codec.family_key(family.family_id),
                    "ConditionExpression": _LIVE_FAMILY,
                    "ExpressionAttributeNames": {**names, "#revoked": "revoked"},
                    "ExpressionAttributeValues": values,
                }
            },
            self._put(codec.refresh_token_to_item(new_token_hash, family)),
        ]

    def _put(self, item: Item) -> dict[str, Any]:
        return {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": _NOT_EXISTS}}

    async def _get_item(self, key: Item) -> Item | None:
        response = await self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return response.get("Item")


def _settled(item: Item, now: datetime) -> Rotation | None:
    """The outcome a token item decides without a write: ``None`` when it may be rotated."""
    family = codec.family_from_token_item(item)
    if family.expires_at <= now:
        return Rotation(RotationOutcome.INVALID)
    if item["used"]["BOOL"]:
        return Rotation(RotationOutcome.REUSED, family)
    return None


__all__ = ["DynamoRefreshTokenStore"]
