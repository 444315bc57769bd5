"""What only the DynamoDB backend promises: its item layout, cursors, resources and failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.storage.backends import DynamoBackend
from tests.storage.factories import make_record, make_user, unique
from usermgmt_server.adapters.dynamodb import codec
from usermgmt_server.adapters.dynamodb.clients import AwsClients, AwsSettings, open_aws_clients
from usermgmt_server.adapters.dynamodb.errors import translate_storage_errors
from usermgmt_server.adapters.dynamodb.repository import DynamoUserRepository
from usermgmt_server.adapters.dynamodb.resources import create_resources, table_is_reachable
from usermgmt_server.adapters.dynamodb.schema import LIST_INDEX, TTL_ATTRIBUTE, table_definition
from usermgmt_server.adapters.security.system import ManualClock
from usermgmt_server.domain.errors import InvalidPageToken, StorageUnavailable, UsernameTaken
from usermgmt_server.domain.model import UserState

CLOSED_PORT = "http://127.0.0.1:9"


@pytest.fixture
async def dynamo(aws_clients: AwsClients, table_name: str) -> AsyncIterator[DynamoBackend]:
    """The DynamoDB backend on a fresh table."""
    await create_resources(aws_clients, table_name, "usermgmt-storage-tests")
    yield DynamoBackend(aws_clients.dynamodb, table_name, ManualClock(datetime.now(UTC)))
    await aws_clients.dynamodb.delete_table(TableName=table_name)


async def _raw_items(backend: DynamoBackend) -> dict[str, codec.Item]:
    response = await backend.client.scan(TableName=backend.table_name, ConsistentRead=True)
    return {item["pk"]["S"]: item for item in response["Items"]}


# -- schema and resources -----------------------------------------------------------------------


def test_table_definition_is_the_documented_one() -> None:
    definition = table_definition("users")
    assert definition["TableName"] == "users"
    assert definition["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    [index] = definition["GlobalSecondaryIndexes"]
    assert index["IndexName"] == LIST_INDEX == "users-by-shard"
    assert index["KeySchema"] == [
        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    assert {a["AttributeType"] for a in definition["AttributeDefinitions"]} == {"S"}
    assert definition["BillingMode"] == "PAY_PER_REQUEST"
    assert definition["SSESpecification"] == {"Enabled": True}
    assert TTL_ATTRIBUTE == "expires_at"


async def test_create_resources_is_idempotent(aws_clients: AwsClients, table_name: str) -> None:
    first = await create_resources(aws_clients, table_name, "usermgmt-idempotent")
    second = await create_resources(aws_clients, table_name, "usermgmt-idempotent")
    try:
        assert first == second
        assert first.topic_arn.endswith(":usermgmt-idempotent")
        described = await aws_clients.dynamodb.describe_table(TableName=table_name)
        assert described["Table"]["TableStatus"] == "ACTIVE"
        assert described["Table"]["KeySchema"] == table_definition(table_name)["KeySchema"]
        ttl = await aws_clients.dynamodb.describe_time_to_live(TableName=table_name)
        assert ttl["TimeToLiveDescription"]["AttributeName"] == TTL_ATTRIBUTE
        assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
        assert await table_is_reachable(aws_clients.dynamodb, table_name)
    finally:
        await aws_clients.dynamodb.delete_table(TableName=table_name)
    assert not await table_is_reachable(aws_clients.dynamodb, table_name)


# -- item layout --------------------------------------------------------------------------------


async def test_items_follow_the_documented_layout(dynamo: DynamoBackend) -> None:
    user = make_user("Zoë", "Zoe@Example.com", roles=("admin",), state=UserState.DISABLED)
    record = make_record(user)
    await dynamo.repository.create(user, record)

    items = await _raw_items(dynamo)

    assert set(items) == {
        f"USER#{user.user_id}",
        f"USERNAME#{user.username_key}",
        f"EMAIL#{user.email_key}",
        f"IDEMPOTENCY#{record.key}",
    }
    stored = items[f"USER#{user.user_id}"]
    assert stored["sk"] == {"S": "USER"}
    assert stored["state"] == {"S": "DISABLED"}
    assert stored["roles"] == {"L": [{"S": "admin"}]}
    assert stored["version"] == {"N": "1"}
    assert stored["create_time"] == {"S": "2025-03-04T05:06:07.123456+00:00"}
    shard = codec.shard_of(user.user_id, dynamo.shard_count)
    assert stored["gsi1pk"] == {"S": f"USERS#{shard:02d}"}
    assert stored["gsi1sk"] == {"S": user.user_id}
    for guard in (f"USERNAME#{user.username_key}", f"EMAIL#{user.email_key}"):
        assert items[guard]["sk"] == {"S": "GUARD"}
        assert items[guard]["user_id"] == {"S": user.user_id}
        assert "gsi1pk" not in items[guard]
    idempotency = items[f"IDEMPOTENCY#{record.key}"]
    assert idempotency["sk"] == {"S": "RECORD"}
    expected_expiry = dynamo.clock.now() + timedelta(hours=24)
    assert int(idempotency[TTL_ATTRIBUTE]["N"]) == int(expected_expiry.timestamp())


def test_shards_are_stable_and_spread() -> None:
    ids = [f"user-{index}" for index in range(1600)]
    shards = [codec.shard_of(user_id, 16) for user_id in ids]
    assert shards == [codec.shard_of(user_id, 16) for user_id in ids]
    assert codec.shard_of("abc", 16) == int("ba7816bf", 16) % 16
    counts = [shards.count(shard) for shard in range(16)]
    assert min(counts) > 60 and max(counts) < 140


def test_naive_times_are_refused() -> None:
    user = make_user()
    with pytest.raises(ValueError, match="timezone-aware"):
        codec.user_to_item(replace(user, create_time=datetime(2025, 1, 1)), 16)


def test_times_round_trip_exactly() -> None:
    moment = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    assert codec.parse_time(codec.format_time(moment)) == moment
    assert codec.parse_time(codec.format_time(moment)).tzinfo is UTC


async def test_a_guard_without_its_account_finds_nothing(dynamo: DynamoBackend) -> None:
    await dynamo.client.put_item(
        TableName=dynamo.table_name,
        Item={**codec.username_guard_key("ghost"), "user_id": {"S": "gone"}},
    )
    assert await dynamo.repository.find_by_username("ghost") is None
    with pytest.raises(UsernameTaken):
        await dynamo.repository.create(make_user("ghost"))


# -- cursors ------------------------------------------------------------------------------------


def _user_id_in_shard(shard: int, shard_count: int = 16) -> str:
    return next(f"id-{n}" for n in range(10_000) if codec.shard_of(f"id-{n}", shard_count) == shard)


@pytest.mark.parametrize(
    "cursor",
    [
        {"shard": True},
        {"shard": 1.0},
        {"shard": 16},
        {"shard": 0, "after": 5},
        {"shard": 0, "after": ""},
        {"shard": 0, "after": None},
        {"shard": 0, "after": "x" * 129},
        {"shard": 3, "after": _user_id_in_shard(4)},
        {"shard": 3, "after": _user_id_in_shard(3), "extra": 1},
        ["shard", 3],
    ],
)
def test_malformed_cursors_are_rejected(cursor: Any) -> None:
    with pytest.raises(InvalidPageToken):
        codec.position_from_cursor(cursor, 16)


def test_well_formed_cursors_are_accepted() -> None:
    after = _user_id_in_shard(3)
    assert codec.position_from_cursor({"shard": 3, "after": after}, 16) == codec.ListPosition(
        3, after
    )
    assert codec.position_from_cursor({"shard": 15}, 16) == codec.ListPosition(15)


async def test_cursors_survive_json_and_pages_stay_within_a_read_budget(
    dynamo: DynamoBackend,
) -> None:
    states = list(UserState)
    users = [make_user(state=states[index % 3]) for index in range(90)]
    await dynamo.seed(users)
    # A tiny budget forces short (even empty) pages; the walk must still be complete.
    repository = DynamoUserRepository(
        dynamo.client, dynamo.table_name, shard_count=dynamo.shard_count, list_read_budget=5
    )
    expected = {u.user_id for u in users if u.state is UserState.PENDING_VERIFICATION}
    seen: list[str] = []
    cursor: dict[str, object] | None = None
    for _ in range(200):
        page = await repository.list_page(
            state=UserState.PENDING_VERIFICATION, limit=7, cursor=cursor
        )
        seen += [user.user_id for user in page.users]
        if page.next_cursor is None:
            break
        cursor = json.loads(json.dumps(page.next_cursor))
    else:
        pytest.fail("paging did not end")
    assert sorted(seen) == sorted(expected)


async def test_fewer_shards_still_page_completely(dynamo: DynamoBackend) -> None:
    repository = DynamoUserRepository(dynamo.client, dynamo.table_name, shard_count=1)
    users = [make_user() for _ in range(5)]
    for user in users:
        await repository.create(user)
    first = await repository.list_page(state=None, limit=3, cursor=None)
    assert first.next_cursor is not None
    second = await repository.list_page(state=None, limit=3, cursor=first.next_cursor)
    assert second.next_cursor is None
    assert sorted(u.user_id for u in first.users + second.users) == sorted(u.user_id for u in users)


# -- failures -----------------------------------------------------------------------------------


@pytest.fixture
async def unreachable() -> AsyncIterator[AwsClients]:
    """Clients of an endpoint where nothing listens, without retries."""
    settings = AwsSettings(
        region="us-east-1", endpoint_url=CLOSED_PORT, max_attempts=1, connect_timeout=0.5
    )
    async with open_aws_clients(settings) as clients:
        yield clients


async def test_unreachable_storage_is_storage_unavailable(unreachable: AwsClients) -> None:
    secret_hash = "$argon2id$v=19$m=19456,t=2,p=1$U0VDUkVU$c2VjcmV0LWhhc2g"
    repository = DynamoUserRepository(unreachable.dynamodb, "users")
    user = make_user(password_hash=secret_hash)

    with pytest.raises(StorageUnavailable):
        await repository.get(user.user_id)
    with pytest.raises(StorageUnavailable) as raised:
        await repository.create(user, make_record(user))
    assert secret_hash not in str(raised.value)
    with pytest.raises(StorageUnavailable):
        await repository.find_by_email(user.email_key)
    with pytest.raises(StorageUnavailable):
        await repository.list_page(state=None, limit=10, cursor=None)
    with pytest.raises(StorageUnavailable):
        await repository.replace_password_hash(user, "$argon2id$new")
    assert not await table_is_reachable(unreachable.dynamodb, "users")
    with pytest.raises(StorageUnavailable):
        await create_resources(unreachable, "users", "topic")


async def test_a_missing_table_is_storage_unavailable(aws_clients: AwsClients) -> None:
    repository = DynamoUserRepository(aws_clients.dynamodb, unique("missing-table"))
    with pytest.raises(StorageUnavailable):
        await repository.get("someone")
    with pytest.raises(StorageUnavailable):
        await repository.create(make_user())


async def test_other_client_errors_propagate(dynamo: DynamoBackend) -> None:
    with pytest.raises(ClientError) as raised:
        async with translate_storage_errors("get"):
            await dynamo.client.get_item(TableName=dynamo.table_name, Key={"wrong": {"S": "key"}})
    assert raised.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"],
)
async def test_throttling_and_service_errors_are_storage_unavailable(code: str) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "slow down"}}, "GetItem")
    with pytest.raises(StorageUnavailable, match=code) as raised:
        async with translate_storage_errors("get user"):
            raise error
    assert raised.value.__cause__ is error


class _ConflictingClient:
    """A stand-in DynamoDB client whose transactions lose to concurrent ones ``conflicts`` times."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.calls = 0

    async def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.conflicts:
            reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (
                len(kwargs["TransactItems"]) - 1
            )
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )
        return {}


async def test_transaction_conflicts_are_retried_then_unavailable() -> None:
    recovering = _ConflictingClient(conflicts=2)
    await DynamoUserRepository(recovering, "users").create(make_user())
    assert recovering.calls == 3

    stuck = _ConflictingClient(conflicts=99)
    with pytest.raises(StorageUnavailable, match="TransactionCanceledException"):
        await DynamoUserRepository(stuck, "users", transaction_attempts=3).create(make_user())
    assert stuck.calls == 3
