"""What only the DynamoDB backend promises: its item layout, cursors, resources and failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.storage.backends import DynamoBackend
from tests.storage.factories import (
    make_code,
    make_event,
    make_family,
    make_record,
    make_user,
    token_hash,
    unique,
)
from usermgmt_server.adapters.dynamodb import (
    DynamoCodeStore,
    DynamoLeaseStore,
    DynamoLoginFailureStore,
    DynamoOutbox,
    DynamoRefreshTokenStore,
    codec,
)
from usermgmt_server.adapters.dynamodb.clients import AwsClients, AwsSettings, open_aws_clients
from usermgmt_server.adapters.dynamodb.errors import UnexpectedCondition, translate_storage_errors
from usermgmt_server.adapters.dynamodb.repository import DynamoUserRepository
from usermgmt_server.adapters.dynamodb.resources import create_resources, table_is_reachable
from usermgmt_server.adapters.dynamodb.schema import LIST_INDEX, TTL_ATTRIBUTE, table_definition
from usermgmt_server.adapters.security.system import ManualClock
from usermgmt_server.domain.errors import InvalidPageToken, StorageUnavailable, UsernameTaken
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.model import CodePurpose, NotificationChannel, UserState

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


async def test_new_user_fields_are_stored_as_documented(dynamo: DynamoBackend) -> None:
    user = make_user()
    await dynamo.repository.create(user)
    stored = (await _raw_items(dynamo))[f"USER#{user.user_id}"]
    assert stored["password_change_required"] == {"BOOL": False}
    assert stored["pending_email"] == {"S": ""}
    assert stored["notification_channel"] == {"S": "EMAIL"}
    assert stored["phone_number"] == {"S": ""}
    assert "tokens_valid_after" not in stored

    moment = datetime(2025, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
    revoked = replace(
        user,
        tokens_valid_after=moment,
        pending_email="n@example.com",
        notification_channel=NotificationChannel.SMS,
        phone_number="+15550100",
        version=2,
    )
    await dynamo.repository.update(user, revoked)
    stored = (await _raw_items(dynamo))[f"USER#{user.user_id}"]
    assert stored["tokens_valid_after"] == {"S": "2025-05-06T07:08:09.000010+00:00"}
    assert stored["pending_email"] == {"S": "n@example.com"}
    assert stored["notification_channel"] == {"S": "SMS"}
    assert stored["phone_number"] == {"S": "+15550100"}

    await dynamo.repository.update(revoked, replace(revoked, tokens_valid_after=None, version=3))
    assert "tokens_valid_after" not in (await _raw_items(dynamo))[f"USER#{user.user_id}"]


async def test_user_items_written_before_the_new_fields_read_as_defaults(
    dynamo: DynamoBackend,
) -> None:
    user = make_user()
    item = codec.user_to_item(user, dynamo.shard_count)
    for name in (
        "tokens_valid_after",
        "password_change_required",
        "pending_email",
        "notification_channel",
        "phone_number",
    ):
        item.pop(name, None)
    await dynamo.client.put_item(TableName=dynamo.table_name, Item=item)

    stored = await dynamo.repository.get(user.user_id)

    assert stored == user
    assert stored is not None and stored.tokens_valid_after is None
    assert not stored.password_change_required and stored.pending_email == ""
    assert stored.notification_channel is NotificationChannel.EMAIL
    assert stored.phone_number == ""


async def test_code_items_follow_the_documented_layout(dynamo: DynamoBackend) -> None:
    user = make_user()
    code = replace(
        make_code(user, datetime(2025, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)),
        purpose=CodePurpose.RESET_PASSWORD,
    )
    await dynamo.codes.save_code(code)

    [item] = (await _raw_items(dynamo)).values()

    assert item["pk"] == {"S": f"CODE#{user.user_id}"}
    assert item["sk"] == {"S": "RESET_PASSWORD"}
    assert {k: v for k, v in item.items() if k not in ("pk", "sk")} == {
        "user_id": {"S": user.user_id},
        "code_hash": {"S": code.code_hash},
        "target": {"S": code.target},
        "created_at": {"S": "2025-01-02T03:04:05.600000+00:00"},
        "valid_until": {"S": "2025-01-02T03:19:05.600000+00:00"},
        "attempts": {"N": "0"},
        # Rounded up, so DynamoDB never removes a code before it expires.
        TTL_ATTRIBUTE: {"N": str(int(code.expires_at.timestamp()) + 1)},
    }
    assert codec.code_key(user.user_id, code.purpose) == {"pk": item["pk"], "sk": item["sk"]}


async def test_refresh_items_follow_the_documented_layout(dynamo: DynamoBackend) -> None:
    family = make_family(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), ttl=timedelta(days=1))
    first, second = token_hash(), token_hash()
    await dynamo.refresh_tokens.create_family(family, first)
    await dynamo.refresh_tokens.rotate(first, second, family.created_at)

    items = await _raw_items(dynamo)

    assert set(items) == {f"FAMILY#{family.family_id}", f"REFRESH#{first}", f"REFRESH#{second}"}
    stored = items[f"FAMILY#{family.family_id}"]
    assert stored["sk"] == {"S": "FAMILY"}
    assert stored["user_id"] == {"S": family.user_id}
    assert stored["created_at"] == {"S": "2025-01-02T03:04:05.000000+00:00"}
    assert stored["revoked"] == {"BOOL": False}
    expiry = {"N": str(int(family.expires_at.timestamp()))}
    assert stored[TTL_ATTRIBUTE] == expiry
    for token, used in ((first, True), (second, False)):
        stored = items[f"REFRESH#{token}"]
        assert stored["sk"] == {"S": "TOKEN"}
        assert stored["family_id"] == {"S": family.family_id}
        assert stored["user_id"] == {"S": family.user_id}
        assert stored["used"] == {"BOOL": used}
        assert stored[TTL_ATTRIBUTE] == expiry


async def test_a_colliding_refresh_family_is_a_bug(dynamo: DynamoBackend) -> None:
    family = make_family(dynamo.clock.now())
    token = token_hash()
    await dynamo.refresh_tokens.create_family(family, token)
    before = await _raw_items(dynamo)

    with pytest.raises(UnexpectedCondition):
        await dynamo.refresh_tokens.create_family(make_family(dynamo.clock.now()), token)
    assert await _raw_items(dynamo) == before


async def test_failure_items_keep_a_ttl_until_a_hard_lock(dynamo: DynamoBackend) -> None:
    subject = "login:someone"
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    dynamo.clock.set(now)
    await dynamo.failures.record_failure(subject, expires_at=now + timedelta(days=1))
    until = now + timedelta(minutes=2)
    await dynamo.failures.lock(subject, until=until, hard=False)

    [item] = (await _raw_items(dynamo)).values()
    assert item["pk"] == {"S": f"FAILURES#{subject}"}
    assert item["sk"] == {"S": "COUNTER"}
    assert item["count"] == {"N": "1"}
    assert item["locked_until"] == {"S": "2025-01-02T03:06:05.000000+00:00"}
    assert item[TTL_ATTRIBUTE] == {"N": str(int((now + timedelta(days=1)).timestamp()))}

    await dynamo.failures.lock(subject, until=None, hard=True)
    await dynamo.failures.record_failure(subject, expires_at=now + timedelta(days=1))

    [item] = (await _raw_items(dynamo)).values()
    assert item["hard_locked"] == {"BOOL": True}
    assert item["count"] == {"N": "2"}
    assert TTL_ATTRIBUTE not in item


async def test_a_soft_lock_without_a_counter_expires_with_the_lock(dynamo: DynamoBackend) -> None:
    until = datetime(2025, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)
    await dynamo.failures.lock("cleared", until=until, hard=False)

    [item] = (await _raw_items(dynamo)).values()
    assert item[TTL_ATTRIBUTE] == {"N": str(int(until.timestamp()) + 1)}
    assert "count" not in item


# -- outbox and leases --------------------------------------------------------------------------


async def test_outbox_items_follow_the_documented_layout(dynamo: DynamoBackend) -> None:
    event = make_event(
        "user-1",
        datetime(2025, 1, 2, 3, 4, 5, 60, tzinfo=UTC),
        event_type="usermgmt.user.locked.v1",
        data={"z": 1, "a": ["é", None], "hard": True},
    )
    await dynamo.failures.clear_failures("user-1", events=[event])

    [item] = (await _raw_items(dynamo)).values()

    shard = codec.shard_of(event.event_id, 8)
    assert item == {
        "pk": {"S": f"OUTBOX#{shard:02d}"},
        "sk": {"S": f"2025-01-02T03:04:05.000060+00:00#{event.event_id}"},
        "event_id": {"S": event.event_id},
        "type": {"S": "usermgmt.user.locked.v1"},
        "subject": {"S": "user-1"},
        "time": {"S": "2025-01-02T03:04:05.000060+00:00"},
        "data": {"S": '{"a": ["\\u00e9", null], "hard": true, "z": 1}'},
    }
    assert TTL_ATTRIBUTE not in item
    assert codec.outbox_key(event) == {"pk": item["pk"], "sk": item["sk"]}


def test_events_round_trip_exactly() -> None:
    east = timezone(timedelta(hours=5, minutes=30))
    event = make_event("someone", datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=east))

    stored = codec.event_from_item(codec.event_to_item(event))

    assert stored == event
    assert stored.time.tzinfo is UTC
    empty = replace(event, data={})
    assert codec.event_from_item(codec.event_to_item(empty)) == empty
    with pytest.raises(ValueError, match="timezone-aware"):
        codec.event_to_item(replace(event, time=datetime(2025, 1, 1)))


def _event_ids_by_shard(per_shard: int, shard_count: int = 8) -> dict[int, list[str]]:
    ids: dict[int, list[str]] = {shard: [] for shard in range(shard_count)}
    n = 0
    while min(len(found) for found in ids.values()) < per_shard:
        shard = codec.shard_of(f"event-{n}", shard_count)
        if len(ids[shard]) < per_shard:
            ids[shard].append(f"event-{n}")
        n += 1
    return ids


async def test_pending_shares_the_limit_out_among_the_shards(dynamo: DynamoBackend) -> None:
    start = dynamo.clock.now()
    by_shard: dict[int, list[DomainEvent]] = {}
    for shard, ids in _event_ids_by_shard(3).items():
        # Shard 7's events are the oldest, so arrival order differs from shard order.
        times = [start + timedelta(seconds=10 * k + 7 - shard) for k in range(len(ids))]
        by_shard[shard] = [make_event(event_id=i, time=t) for i, t in zip(ids, times, strict=True)]
    await dynamo.failures.clear_failures("x", events=[e for es in by_shard.values() for e in es])
    outbox, later = DynamoOutbox(dynamo.client, dynamo.table_name), start + timedelta(days=1)

    one_each = await outbox.pending(written_before=later, limit=8)
    assert {e.event_id for e in one_each} == {es[0].event_id for es in by_shard.values()}
    assert [e.time for e in one_each] == sorted(e.time for e in one_each)
    for _ in range(3):
        batch = await outbox.pending(written_before=later, limit=12)
        assert len(batch) == 12
        for shard, events in by_shard.items():
            taken = [e for e in batch if codec.shard_of(e.event_id, 8) == shard]
            assert 1 <= len(taken) <= 2 and taken == events[: len(taken)]


async def test_pending_gives_a_busy_shard_what_the_others_leave(dynamo: DynamoBackend) -> None:
    ids = _event_ids_by_shard(12)
    start = dynamo.clock.now()
    busy = [make_event(event_id=i, time=start + timedelta(seconds=n)) for n, i in enumerate(ids[0])]
    quiet = make_event(event_id=ids[5][0], time=start + timedelta(hours=1))
    await dynamo.failures.clear_failures("x", events=[*busy, quiet])
    outbox = DynamoOutbox(dynamo.client, dynamo.table_name)

    batch = await outbox.pending(written_before=start + timedelta(days=1), limit=10)

    assert batch == [*busy[:9], quiet]


async def test_a_reused_event_id_is_a_bug_and_writes_nothing(dynamo: DynamoBackend) -> None:
    event = make_event("someone", dynamo.clock.now())
    await dynamo.failures.clear_failures("someone", events=[event])
    before = await _raw_items(dynamo)
    user = make_user()

    with pytest.raises(UnexpectedCondition):
        await dynamo.repository.create(user, events=[event])
    with pytest.raises(UnexpectedCondition):
        await dynamo.codes.save_code(make_code(user, dynamo.clock.now()), events=[event])
    with pytest.raises(UnexpectedCondition):
        await dynamo.failures.lock("someone", until=None, hard=True, events=[event])
    with pytest.raises(UnexpectedCondition):
        await dynamo.failures.clear_failures("someone", events=[event])

    assert await _raw_items(dynamo) == before


async def test_lease_items_follow_the_documented_layout(dynamo: DynamoBackend) -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
    await dynamo.leases.acquire(
        "outbox-sweeper", "owner-1", until=now + timedelta(seconds=30), now=now
    )

    [item] = (await _raw_items(dynamo)).values()

    assert item == {
        "pk": {"S": "LEASE#outbox-sweeper"},
        "sk": {"S": "LEASE"},
        "owner": {"S": "owner-1"},
        "until": {"S": "2025-01-02T03:04:35.250000+00:00"},
        TTL_ATTRIBUTE: {"N": str(int((now + timedelta(seconds=30)).timestamp()) + 1)},
    }


async def test_a_lease_is_held_until_its_last_microsecond(dynamo: DynamoBackend) -> None:
    now = dynamo.clock.now()
    until = now + timedelta(seconds=30)
    assert await dynamo.leases.acquire("job", "a", until=until, now=now)
    assert not await dynamo.leases.acquire("job", "b", until=until, now=until)
    assert await dynamo.leases.acquire(
        "job", "b", until=until, now=until + timedelta(microseconds=1)
    )


def test_outbox_shard_counts_are_bounded() -> None:
    with pytest.raises(ValueError):
        DynamoOutbox(object(), "users", shard_count=0)


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


async def test_the_stores_report_unreachable_storage(unreachable: AwsClients) -> None:
    client, now = unreachable.dynamodb, datetime.now(UTC)
    codes = DynamoCodeStore(client, "users")
    tokens = DynamoRefreshTokenStore(client, "users")
    failures = DynamoLoginFailureStore(client, "users")
    outbox, leases = DynamoOutbox(client, "users"), DynamoLeaseStore(client, "users")
    code, event = make_code(make_user(), now), make_event(time=now)
    calls = [
        codes.save_code(code),
        codes.get_code(code.user_id, code.purpose),
        codes.count_attempt(code.user_id, code.purpose, max_attempts=5, now=now),
        codes.delete_code(code.user_id, code.purpose),
        tokens.create_family(make_family(now), token_hash()),
        tokens.rotate(token_hash(), token_hash(), now),
        tokens.find_family(token_hash()),
        tokens.revoke_family("family"),
        failures.get_failures("subject"),
        failures.record_failure("subject", expires_at=now),
        failures.lock("subject", until=now, hard=False),
        failures.lock("subject", until=None, hard=True),
        failures.clear_failures("subject"),
        codes.save_code(code, events=[event]),
        failures.lock("subject", until=now, hard=False, events=[event]),
        failures.clear_failures("subject", events=[event]),
        outbox.pending(written_before=now, limit=10),
        outbox.remove([event]),
        outbox.backlog(),
        leases.acquire("lease", "owner", until=now, now=now),
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(result) for result in results] == [StorageUnavailable] * len(calls)


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
