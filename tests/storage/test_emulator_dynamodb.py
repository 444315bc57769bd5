"""The embedded emulator's DynamoDB: transactions all or nothing with moto's reasons, and
transactions and partition queries as fast in a large table as in a small one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from usermgmt_server.adapters.dynamodb.clients import AwsClients, AwsSettings, open_aws_clients


@pytest.fixture
async def dynamodb(moto_endpoint: str, table_name: str) -> AsyncIterator[Any]:
    """A DynamoDB client of the session's emulator and an empty table ``pk``/``sk``."""
    settings = AwsSettings(region="us-east-1", endpoint_url=moto_endpoint)
    async with open_aws_clients(settings) as clients:
        await _create_table(clients, table_name)
        yield clients.dynamodb


async def _create_table(clients: AwsClients, table_name: str) -> None:
    await clients.dynamodb.create_table(
        TableName=table_name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}, "sk": {"S": "-"}}


def _put(table: str, name: str, value: str = "v", *, new: bool = True) -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": table, "Item": {**_key(name), "value": {"S": value}}}
    if new:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    return {"Put": put}


async def _names(dynamodb: Any, table: str) -> set[str]:
    response = await dynamodb.scan(TableName=table, ConsistentRead=True)
    return {item["pk"]["S"] for item in response["Items"]}


async def _cancellation(dynamodb: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with pytest.raises(ClientError) as raised:
        await dynamodb.transact_write_items(TransactItems=items)
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    return raised.value.response["CancellationReasons"]


async def test_a_transaction_whose_conditions_hold_writes_every_item(
    dynamodb: Any, table_name: str
) -> None:
    await dynamodb.transact_write_items(
        TransactItems=[_put(table_name, "a"), _put(table_name, "b"), _put(table_name, "c")]
    )
    assert await _names(dynamodb, table_name) == {"a", "b", "c"}


async def test_a_failed_condition_cancels_everything_with_reasons_by_position(
    dynamodb: Any, table_name: str
) -> None:
    await dynamodb.transact_write_items(TransactItems=[_put(table_name, "taken", "old")])

    reasons = await _cancellation(
        dynamodb,
        [
            _put(table_name, "fresh"),
            {
                "Update": {
                    "TableName": table_name,
                    "Key": _key("upserted"),
                    "UpdateExpression": "SET #v = :v",
                    "ExpressionAttributeNames": {"#v": "value"},
                    "ExpressionAttributeValues": {":v": {"S": "new"}},
                }
            },
            _put(table_name, "taken", "other"),
        ],
    )

    assert [reason["Code"] for reason in reasons] == ["None", "None", "ConditionalCheckFailed"]
    assert await _names(dynamodb, table_name) == {"taken"}
    item = await dynamodb.get_item(TableName=table_name, Key=_key("taken"), ConsistentRead=True)
    assert item["Item"]["value"] == {"S": "old"}


async def test_a_failed_condition_can_return_the_old_item(dynamodb: Any, table_name: str) -> None:
    await dynamodb.transact_write_items(TransactItems=[_put(table_name, "taken", "old")])
    put = _put(table_name, "taken", "other")
    put["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"

    reasons = await _cancellation(dynamodb, [put])

    assert reasons[0]["Item"]["value"] == {"S": "old"}


async def test_condition_checks_and_deletes_take_part(dynamodb: Any, table_name: str) -> None:
    await dynamodb.transact_write_items(
        TransactItems=[_put(table_name, "guard"), _put(table_name, "doomed")]
    )

    await dynamodb.transact_write_items(
        TransactItems=[
            {
                "ConditionCheck": {
                    "TableName": table_name,
                    "Key": _key("guard"),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {"Delete": {"TableName": table_name, "Key": _key("doomed")}},
            _put(table_name, "added"),
        ]
    )
    reasons = await _cancellation(
        dynamodb,
        [
            {
                "ConditionCheck": {
                    "TableName": table_name,
                    "Key": _key("doomed"),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {"Delete": {"TableName": table_name, "Key": _key("added")}},
        ],
    )

    assert [reason["Code"] for reason in reasons] == ["ConditionalCheckFailed", "None"]
    assert await _names(dynamodb, table_name) == {"guard", "added"}


async def test_two_operations_on_one_item_are_a_validation_error(
    dynamodb: Any, table_name: str
) -> None:
    with pytest.raises(ClientError) as raised:
        await dynamodb.transact_write_items(
            TransactItems=[_put(table_name, "a"), _put(table_name, "a", new=False)]
        )

    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert await _names(dynamodb, table_name) == set()


async def test_a_write_refused_half_way_leaves_every_item_as_it_was(
    dynamodb: Any, table_name: str
) -> None:
    await dynamodb.transact_write_items(TransactItems=[_put(table_name, "kept", "old")])

    with pytest.raises(ClientError) as raised:
        await dynamodb.transact_write_items(
            TransactItems=[
                _put(table_name, "kept", "overwritten", new=False),
                _put(table_name, "fresh"),
                {
                    "Update": {
                        "TableName": table_name,
                        "Key": _key("other"),
                        # Updating a key attribute is refused only when the update runs.
                        "UpdateExpression": "SET pk = :v",
                        "ExpressionAttributeValues": {":v": {"S": "moved"}},
                    }
                },
            ]
        )

    assert raised.value.response["Error"]["Code"] in (
        "ValidationException",
        "TransactionCanceledException",
    )
    assert await _names(dynamodb, table_name) == {"kept"}
    item = await dynamodb.get_item(TableName=table_name, Key=_key("kept"), ConsistentRead=True)
    assert item["Item"]["value"] == {"S": "old"}


async def test_transactions_do_not_slow_down_as_the_table_grows(
    dynamodb: Any, table_name: str
) -> None:
    async def timed(prefix: str, count: int) -> float:
        started = time.perf_counter()
        for index in range(count):
            await dynamodb.transact_write_items(
                TransactItems=[_put(table_name, f"{prefix}-{index}-{part}") for part in "abcd"]
            )
        return time.perf_counter() - started

    small = await timed("first", 50)
    await _fill(dynamodb, table_name, 4000)
    large = await timed("second", 50)

    # Copying a 4,000-item table for each of the 4 items made this about 100 times slower.
    assert large < 4 * small + 1.0


async def _fill(dynamodb: Any, table_name: str, count: int) -> None:
    for start in range(0, count, 25):
        batch = [
            {"PutRequest": {"Item": {**_key(f"filler-{index}"), "value": {"S": "x" * 100}}}}
            for index in range(start, min(start + 25, count))
        ]
        pending: dict[str, Any] = {table_name: batch}
        while pending:
            result = await dynamodb.batch_write_item(RequestItems=pending)
            pending = result.get("UnprocessedItems") or {}


async def test_a_partition_query_sees_its_partition_only_and_pages(
    dynamodb: Any, table_name: str
) -> None:
    for sort_key in ("a", "b", "c", "d"):
        item = {"pk": {"S": "wanted"}, "sk": {"S": sort_key}}
        await dynamodb.put_item(TableName=table_name, Item=item)
    await _fill(dynamodb, table_name, 50)
    query = {
        "TableName": table_name,
        "KeyConditionExpression": "pk = :pk AND sk < :before",
        "ExpressionAttributeValues": {":pk": {"S": "wanted"}, ":before": {"S": "d"}},
        "Limit": 2,
    }

    first = await dynamodb.query(**query)
    second = await dynamodb.query(**query, ExclusiveStartKey=first["LastEvaluatedKey"])
    backwards = await dynamodb.query(**query, ScanIndexForward=False)
    missing = await dynamodb.query(
        TableName=table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "absent"}},
    )

    assert [item["sk"]["S"] for item in first["Items"] + second["Items"]] == ["a", "b", "c"]
    assert [item["sk"]["S"] for item in backwards["Items"]] == ["c", "b"]
    assert missing["Items"] == [] and missing["Count"] == 0


async def test_partition_queries_do_not_slow_down_as_the_table_grows(
    dynamodb: Any, table_name: str
) -> None:
    async def timed() -> float:
        started = time.perf_counter()
        for _ in range(50):
            await dynamodb.query(
                TableName=table_name,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "filler-1"}},
            )
        return time.perf_counter() - started

    await _fill(dynamodb, table_name, 10)
    small = await timed()
    await _fill(dynamodb, table_name, 8000)
    large = await timed()

    # Sorting 8,000 items for each query made this about 20 times slower.
    assert large < 4 * small + 1.0
