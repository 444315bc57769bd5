"""``LeaseStore`` on the service's DynamoDB table (item layout in ``schema``).

A lease is one item per name. Taking or renewing it is a single conditional ``PutItem``: it
succeeds when there is no lease, it is ours, or it ran out (``until < now``). DynamoDB applies
conditional writes one at a time, so of any number of instances racing for a free lease exactly
one wins. The holder renews it well before ``until``; the others take it over once ``until`` has
passed. ``expires_at`` (the TTL) only tidies up leases nobody renews any more: the condition
compares ``until`` with the caller's clock, so a lease is free as soon as it ran out.

Clocks of the instances must roughly agree: an instance whose clock runs ahead can take over a
lease that its holder still believes to be valid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from usermgmt_server.adapters.dynamodb import codec
from usermgmt_server.adapters.dynamodb.errors import (
    CONDITION_FAILED,
    error_code,
    translate_storage_errors,
)


class DynamoLeaseStore:
    """Leases that let one instance at a time run a background job (``LeaseStore``)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    async def acquire(self, name: str, owner: str, *, until: datetime, now: datetime) -> bool:
        """Take or renew lease ``name`` for ``owner`` until ``until``; whether ``owner`` holds
        it now (``False`` when another owner holds an unexpired lease)."""
        async with translate_storage_errors("acquire lease"):
            try:
                await self._client.put_item(
                    TableName=self._table,
                    Item=codec.lease_to_item(name, owner, until),
                    ConditionExpression="attribute_not_exists(pk) OR #owner = :me OR #until < :now",
                    ExpressionAttributeNames={"#owner": "owner", "#until": "until"},
                    ExpressionAttributeValues={
                        ":me": {"S": owner},
                        ":now": {"S": codec.format_time(now)},
                    },
                )
            except ClientError as error:
                if error_code(error) != CONDITION_FAILED:
                    raise
                return False
        return True


__all__ = ["DynamoLeaseStore"]
