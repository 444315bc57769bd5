"""Creation of the AWS resources (for local runs and tests) and a cheap reachability probe.

In production Terraform owns the table and topic; ``create_resources`` builds the same ones
(the table from ``schema.table_definition``) and is safe to run again or from several processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from usermgmt_server.adapters.dynamodb.clients import AwsClients
from usermgmt_server.adapters.dynamodb.errors import (
    CONNECTION_ERRORS,
    error_code,
    translate_storage_errors,
)
from usermgmt_server.adapters.dynamodb.schema import TTL_ATTRIBUTE, table_definition
from usermgmt_server.domain.errors import StorageUnavailable

_WAITER_CONFIG = {"Delay": 1, "MaxAttempts": 60}


@dataclass(frozen=True, slots=True)
class ResourcesInfo:
    """What exists after ``create_resources``."""

    table_name: str
    table_arn: str
    topic_arn: str


async def create_resources(clients: AwsClients, table_name: str, topic_name: str) -> ResourcesInfo:
    """Create the table (waiting until ACTIVE), enable its TTL and create the topic.

    Idempotent: resources that already exist are kept as they are. Raises
    ``StorageUnavailable`` when AWS cannot be reached or the table never becomes active.
    """
    async with translate_storage_errors("create resources"):
        await _create_table(clients.dynamodb, table_name)
        try:
            await clients.dynamodb.get_waiter("table_exists").wait(
                TableName=table_name, WaiterConfig=_WAITER_CONFIG
            )
        except WaiterError as error:
            raise StorageUnavailable(f"table {table_name} did not become active") from error
        described = await clients.dynamodb.describe_table(TableName=table_name)
        await _enable_ttl(clients.dynamodb, table_name)
        topic = await clients.sns.create_topic(Name=topic_name)
    return ResourcesInfo(
        table_name=table_name,
        table_arn=described["Table"]["TableArn"],
        topic_arn=topic["TopicArn"],
    )


async def table_is_reachable(client: Any, table_name: str) -> bool:
    """Whether the table answers a ``DescribeTable`` (for health checks; never raises for AWS)."""
    try:
        described = await client.describe_table(TableName=table_name)
    except (ClientError, *CONNECTION_ERRORS):
        return False
    return described["Table"].get("TableStatus") in {"ACTIVE", "UPDATING"}


async def _create_table(client: Any, table_name: str) -> None:
    try:
        await client.create_table(**table_definition(table_name))
    except ClientError as error:
        if error_code(error) != "ResourceInUseException":
            raise


async def _enable_ttl(client: Any, table_name: str) -> None:
    described = await client.describe_time_to_live(TableName=table_name)
    ttl = described.get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
        return
    try:
        await client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    except ClientError as error:
        # Another process enabled it between our two calls.
        if error_code(error) != "ValidationException" or "already enabled" not in str(error):
            raise


__all__ = ["ResourcesInfo", "create_resources", "table_is_reachable"]
