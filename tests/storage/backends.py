"""The storage backends the contract suite runs against, behind one small test interface.

A backend gives the suite a ``UserRepository``, the code, refresh-token and login-failure stores
(all sharing one ``ManualClock``), the outbox and the lease store, plus two test-only abilities:
``seed`` (write many accounts quickly, bypassing the repository) and ``audit`` (read back
everything stored, to check that guards and accounts agree and that failed calls wrote nothing,
outbox events included).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from usermgmt_server.adapters.dynamodb import codec
from usermgmt_server.adapters.dynamodb.clients import AwsClients
from usermgmt_server.adapters.dynamodb.codes import DynamoCodeStore
from usermgmt_server.adapters.dynamodb.leases import DynamoLeaseStore
from usermgmt_server.adapters.dynamodb.login_failures import DynamoLoginFailureStore
from usermgmt_server.adapters.dynamodb.outbox import DynamoOutbox
from usermgmt_server.adapters.dynamodb.refresh_tokens import DynamoRefreshTokenStore
from usermgmt_server.adapters.dynamodb.repository import DynamoUserRepository
from usermgmt_server.adapters.dynamodb.resources import create_resources
from usermgmt_server.adapters.security.system import ManualClock
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.model import User
from usermgmt_server.domain.ports import (
    CodeStore,
    LeaseStore,
    LoginFailureStore,
    Outbox,
    RefreshTokenStore,
    UserRepository,
)


@dataclass
class Audit:
    """Everything a backend stores, in domain terms."""

    users: dict[str, User] = field(default_factory=dict)
    username_guards: dict[str, str] = field(default_factory=dict)
    email_guards: dict[str, str] = field(default_factory=dict)
    idempotency: dict[str, str] = field(default_factory=dict)
    # (user id, purpose) -> code hash
    codes: dict[tuple[str, str], str] = field(default_factory=dict)
    # family id -> revoked
    refresh_families: dict[str, bool] = field(default_factory=dict)
    # token hash -> used
    refresh_tokens: dict[str, bool] = field(default_factory=dict)
    # subject -> count
    login_failures: dict[str, int] = field(default_factory=dict)
    # event id -> the event waiting in the outbox
    outbox: dict[str, DomainEvent] = field(default_factory=dict)
    # lease name -> owner
    leases: dict[str, str] = field(default_factory=dict)

    def assert_consistent(self) -> None:
        """Every guard belongs to an existing account holding that key, and vice versa."""
        for key, user_id in self.username_guards.items():
            assert user_id in self.users, f"orphan username guard {key!r}"
            assert self.users[user_id].username_key == key
        for key, user_id in self.email_guards.items():
            assert user_id in self.users, f"orphan e-mail guard {key!r}"
            assert self.users[user_id].email_key == key
        for user in self.users.values():
            assert self.username_guards.get(user.username_key) == user.user_id
            if user.email_key:
                assert self.email_guards.get(user.email_key) == user.user_id
        assert len(self.username_guards) == len(self.users)
        assert len(self.email_guards) == sum(1 for u in self.users.values() if u.email_key)


class StorageBackend(Protocol):
    """What the contract suite needs from a backend."""

    name: str
    repository: UserRepository
    codes: CodeStore
    refresh_tokens: RefreshTokenStore
    failures: LoginFailureStore
    outbox: Outbox
    leases: LeaseStore
    clock: ManualClock

    async def seed(self, users: Sequence[User]) -> None:
        """Store many accounts (with their guards) quickly."""
        ...

    async def audit(self) -> Audit:
        """Everything currently stored."""
        ...


@dataclass(frozen=True)
class Population:
    """A store holding many accounts (shared by the paging tests of a module)."""

    backend: StorageBackend
    users: list[User]


class DynamoBackend:
    """The DynamoDB repository on its own table in the moto server."""

    name = "dynamodb"
    shard_count = 16

    def __init__(self, client: Any, table_name: str, clock: ManualClock) -> None:
        self.client = client
        self.table_name = table_name
        self.clock = clock
        self.repository = DynamoUserRepository(
            client, table_name, shard_count=self.shard_count, clock=clock
        )
        self.codes = DynamoCodeStore(client, table_name, clock=clock)
        self.refresh_tokens = DynamoRefreshTokenStore(client, table_name, clock=clock)
        self.failures = DynamoLoginFailureStore(client, table_name, clock=clock)
        self.outbox = DynamoOutbox(client, table_name)
        self.leases = DynamoLeaseStore(client, table_name)

    async def seed(self, users: Sequence[User]) -> None:
        """Batch-write the user items and guards (25 per request)."""
        items: list[codec.Item] = []
        for user in users:
            items.append(codec.user_to_item(user, self.shard_count))
            items.append({**codec.username_guard_key(user.username_key), **_owner(user)})
            if user.email_key:
                items.append({**codec.email_guard_key(user.email_key), **_owner(user)})
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            pending: dict[str, Any] = {self.table_name: requests}
            while pending:
                response = await self.client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}

    async def audit(self) -> Audit:
        """Scan the table and classify every item by its key prefix."""
        audit = Audit()
        paginator = self.client.get_paginator("scan")
        async for page in paginator.paginate(TableName=self.table_name, ConsistentRead=True):
            for item in page["Items"]:
                pk = item["pk"]["S"]
                kind, _, key = pk.partition("#")
                if kind == "USER":
                    user = codec.user_from_item(item)
                    audit.users[user.user_id] = user
                elif kind == "USERNAME":
                    audit.username_guards[key] = item["user_id"]["S"]
                elif kind == "EMAIL":
                    audit.email_guards[key] = item["user_id"]["S"]
                elif kind == "IDEMPOTENCY":
                    audit.idempotency[key] = item["user_id"]["S"]
                elif kind == "CODE":
                    audit.codes[key, item["sk"]["S"]] = item["code_hash"]["S"]
                elif kind == "FAMILY":
                    audit.refresh_families[key] = item["revoked"]["BOOL"]
                elif kind == "REFRESH":
                    audit.refresh_tokens[key] = item["used"]["BOOL"]
                elif kind == "FAILURES":
                    audit.login_failures[key] = int(item.get("count", {"N": "0"})["N"])
                elif kind == "OUTBOX":
                    event = codec.event_from_item(item)
                    audit.outbox[event.event_id] = event
                elif kind == "LEASE":
                    audit.leases[key] = item["owner"]["S"]
                else:
                    raise AssertionError(f"unexpected item {pk!r}")
        return audit


BACKENDS = ["dynamodb"]


@asynccontextmanager
async def open_backend(
    kind: str, clients: AwsClients, table_name: str
) -> AsyncIterator[StorageBackend]:
    """An empty store of ``kind``, removed again afterwards."""
    if kind != "dynamodb":
        raise ValueError(f"unknown storage backend {kind!r}")
    await create_resources(clients, table_name, "usermgmt-storage-tests")
    try:
        yield DynamoBackend(clients.dynamodb, table_name, ManualClock(datetime.now(UTC)))
    finally:
        await clients.dynamodb.delete_table(TableName=table_name)


def _owner(user: User) -> codec.Item:
    return {"user_id": {"S": user.user_id}}
