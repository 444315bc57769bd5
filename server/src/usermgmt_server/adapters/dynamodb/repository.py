"""``UserRepository`` on one DynamoDB table (layout in ``schema``).

Every change is one ``TransactWriteItems`` call: the user item plus one guard item per unique
normalised attribute (username, e-mail), on registration the idempotency record, a one-time code
the change issues, and one outbox item per domain event describing the change (see ``outbox``).
Each item carries its own condition, so DynamoDB either applies all of them or none (a refused
change publishes no event), and the position of a failed condition in ``CancellationReasons``
says which rule was broken. Optimistic locking uses
the ``version`` attribute. Transactions cancelled only by conflicts with concurrent transactions
are retried a few times (nothing was written), then reported as ``StorageUnavailable``.

Listing — the trade-off. Three ways to page through every account:

- A paged ``Scan`` of the table reads every item (guards and idempotency records too, then
  filters them out), costs read capacity for all of them and has no useful order; cursors are
  ``LastEvaluatedKey`` values. Simple, but cost grows with everything in the table.
- One GSI partition holding every user (``gsi1pk = "USERS"``) gives ordered, cheap queries but
  makes one partition key hot: every registration writes to it and it is capped at
  1,000 WCU/3,000 RCU per partition, so it stops scaling with large tables or busy sign-up days.
- A sparse GSI sharded over N partition keys (``USERS#00`` .. ``USERS#<N-1>``, shard = stable
  hash of the user id), chosen here: only user items are in the index, writes spread over N
  keys, and a listing queries the shards one after another in ``user_id`` order within each
  shard. The cost is N small extra queries per full walk and no global ordering; changing N
  needs a backfill of ``gsi1pk``. Reads of a GSI are eventually consistent, so a very recent
  change may show up on the next page only.

The cursor is ``{"shard": s, "after": user_id}`` (``after`` absent = start of the shard); each
query resumes strictly after that key, so no account is returned twice or skipped. With a state
filter, DynamoDB applies ``Limit`` before the filter; a page therefore stops after reading
``list_read_budget`` index items even if it holds fewer than ``limit`` accounts, so one call
never walks a whole large table.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from usermgmt_server.adapters.dynamodb import codec
from usermgmt_server.adapters.dynamodb.batches import resend_unprocessed
from usermgmt_server.adapters.dynamodb.codec import Item, ListPosition
from usermgmt_server.adapters.dynamodb.errors import (
    CONDITION_FAILED,
    UnexpectedCondition,
    error_code,
    translate_storage_errors,
)
from usermgmt_server.adapters.dynamodb.outbox import event_puts
from usermgmt_server.adapters.dynamodb.schema import (
    LIST_INDEX,
    LIST_SORT_KEY,
    PARTITION_KEY,
    TTL_ATTRIBUTE,
)
from usermgmt_server.adapters.dynamodb.transactions import condition_failed as _failed
from usermgmt_server.adapters.dynamodb.transactions import transact
from usermgmt_server.domain.errors import (
    EmailTaken,
    EtagMismatch,
    StorageUnavailable,
    UsermgmtError,
    UsernameTaken,
    UserNotFound,
)
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.model import (
    CodePurpose,
    Holders,
    IdempotencyRecord,
    OneTimeCode,
    User,
    UserPage,
    UserState,
)
from usermgmt_server.domain.ports import Clock, CodeConsumed, DuplicateRequest

_NOT_EXISTS = "attribute_not_exists(pk)"
# With a filter most index items may be dropped, so a query reads at least this many of them
# (read budget permitting) rather than only as many as the page still lacks.
_FILTERED_QUERY_MIN = 100
# BatchGetItem reads at most 100 keys per call.
_BATCH_GET_KEYS = 100


class UtcClock:
    """The system clock in UTC (the default ``Clock`` of the DynamoDB adapters)."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)


class DynamoUserRepository:
    """Accounts, their unique guards and idempotency records in one DynamoDB table.

    ``client`` is a long-lived aiobotocore DynamoDB client; ``shard_count`` must be the same in
    every process writing the table (it decides the listing shard of each account).
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        shard_count: int = 16,
        idempotency_ttl: timedelta = timedelta(hours=24),
        clock: Clock | None = None,
        transaction_attempts: int = 3,
        list_read_budget: int = 2000,
    ) -> None:
        if not 1 <= shard_count <= 100:
            raise ValueError("shard_count must be between 1 and 100")
        self._client = client
        self._table = table_name
        self._shard_count = shard_count
        self._idempotency_ttl = idempotency_ttl
        self._clock: Clock = clock or UtcClock()
        self._transaction_attempts = max(1, transaction_attempts)
        self._list_read_budget = max(1, list_read_budget)

    # -- writes -------------------------------------------------------------------------------

    async def create(
        self,
        user: User,
        idempotency: IdempotencyRecord | None = None,
        *,
        events: Sequence[DomainEvent] = (),
        code: OneTimeCode | None = None,
    ) -> None:
        """Store a new account, its guards, the idempotency record, ``code`` and the outbox
        ``events`` in one transaction.

        Raises ``DuplicateRequest`` (checked first), ``UsernameTaken`` or ``EmailTaken``; nothing
        is written then, events included.
        """
        _check_code_owner(code, user)
        items = [
            self._put(codec.user_to_item(user, self._shard_count), _NOT_EXISTS),
            self._put(self._guard(codec.username_guard_key(user.username_key), user), _NOT_EXISTS),
        ]
        email_index = idempotency_index = None
        if user.email_key:
            email_index = len(items)
            items.append(
                self._put(self._guard(codec.email_guard_key(user.email_key), user), _NOT_EXISTS)
            )
        if idempotency is not None:
            idempotency_index = len(items)
            now = self._clock.now()
            items.append(
                self._put(
                    codec.idempotency_to_item(idempotency, now + self._idempotency_ttl),
                    # DynamoDB's TTL deletes late; an expired record no longer counts.
                    f"{_NOT_EXISTS} OR #ttl < :now",
                    names={"#ttl": TTL_ATTRIBUTE},
                    values={":now": {"N": str(int(now.timestamp()))}},
                )
            )
        if code is not None:
            items.append(self._put_code(code))
        items += event_puts(self._table, events)
        async with translate_storage_errors("create user"):
            codes = await self._transact("create user", items)
        if codes is None:
            return
        if _failed(codes, idempotency_index):
            raise DuplicateRequest()
        if _failed(codes, 1):
            raise UsernameTaken()
        if _failed(codes, email_index):
            raise EmailTaken()
        raise UnexpectedCondition("a new user id or event id is already stored")

    async def update(
        self,
        before: User,
        after: User,
        *,
        consume_code: OneTimeCode | None = None,
        events: Sequence[DomainEvent] = (),
        code: OneTimeCode | None = None,
    ) -> None:
        """Replace ``before`` (matched by version) with ``after`` and move changed guards, in one
        transaction with the outbox ``events`` and a new ``code`` (replacing the user's code of
        that purpose).

        The password hash is only written when it changed, so a concurrent rehash survives.
        With ``consume_code``, the code's item is deleted in the same transaction, on condition
        that it still holds that code's hash (if ``code`` has the same purpose, it replaces the
        consumed code under that condition instead). Raises ``CodeConsumed`` (checked first)
        when the code is gone or was replaced, ``UserNotFound``, ``EtagMismatch``,
        ``UsernameTaken`` or ``EmailTaken``; nothing is written in any of these cases, events
        included.
        """
        if before.user_id != after.user_id:
            raise ValueError("an update cannot change the user id")
        if consume_code is not None and consume_code.user_id != after.user_id:
            raise ValueError("a code can only be consumed by an update of its own user")
        _check_code_owner(code, after)
        attributes = codec.user_attributes(after)
        if after.password_hash != before.password_hash:
            attributes["password_hash"] = {"S": after.password_hash}
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values: Item = {f":a{i}": value for i, value in enumerate(attributes.values())}
        expression = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(attributes)))
        removed = [name for name in codec.OPTIONAL_USER_ATTRIBUTES if name not in attributes]
        if removed:
            names.update({f"#r{i}": name for i, name in enumerate(removed)})
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": codec.user_key(after.user_id),
                    "UpdateExpression": expression,
                    "ConditionExpression": "attribute_exists(pk) AND #version = :expected",
                    "ExpressionAttributeNames": {**names, "#version": "version"},
                    "ExpressionAttributeValues": {
                        **values,
                        ":expected": {"N": str(before.version)},
                    },
                }
            }
        ]
        username_index = email_index = None
        if after.username_key != before.username_key:
            items.append(self._release(codec.username_guard_key(before.username_key), before))
            username_index = len(items)
            items.append(
                self._put(
                    self._guard(codec.username_guard_key(after.username_key), after), _NOT_EXISTS
                )
            )
        if after.email_key != before.email_key:
            if before.email_key:
                items.append(self._release(codec.email_guard_key(before.email_key), before))
            if after.email_key:
                email_index = len(items)
                items.append(
                    self._put(
                        self._guard(codec.email_guard_key(after.email_key), after), _NOT_EXISTS
                    )
                )
        code_index = None
        if consume_code is not None:
            # One transaction may touch an item only once: a new code of the consumed code's
            # purpose overwrites it under the same condition.
            unchanged = {
                "ConditionExpression": "#hash = :hash",
                "ExpressionAttributeNames": {"#hash": "code_hash"},
                "ExpressionAttributeValues": {":hash": {"S": consume_code.code_hash}},
            }
            code_index = len(items)
            if code is not None and code.purpose is consume_code.purpose:
                items.append({"Put": {**self._put_code(code)["Put"], **unchanged}})
                code = None
            else:
                key = codec.code_key(consume_code.user_id, consume_code.purpose)
                items.append({"Delete": {"TableName": self._table, "Key": key, **unchanged}})
        if code is not None:
            items.append(self._put_code(code))
        items += event_puts(self._table, events)
        async with translate_storage_errors("update user"):
            codes = await self._transact("update user", items)
            if codes is None:
                return
            if _failed(codes, code_index):
                raise CodeConsumed()
            if _failed(codes, 0):
                raise await self._missing_or_changed(before.user_id)
        if _failed(codes, username_index):
            raise UsernameTaken()
        if _failed(codes, email_index):
            raise EmailTaken()
        raise UnexpectedCondition(
            "a guard of the user belongs to another account, or an event id is reused"
        )

    async def delete(self, user: User, *, events: Sequence[DomainEvent] = ()) -> None:
        """Remove the account (matched by version) and its guards in one transaction, with the
        outbox ``events``.

        The same transaction deletes the account's one-time codes and its failed sign-in
        counter (a hard lock has no TTL and would otherwise stay forever). Refresh-token items
        cannot be found by user without an index and are left to their TTL; a refresh of a
        deleted account fails because the caller checks that the account still exists.
        Raises ``UserNotFound`` or ``EtagMismatch``.
        """
        items = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": codec.user_key(user.user_id),
                    "ConditionExpression": "#version = :expected",
                    "ExpressionAttributeNames": {"#version": "version"},
                    "ExpressionAttributeValues": {":expected": {"N": str(user.version)}},
                }
            },
            self._release(codec.username_guard_key(user.username_key), user),
        ]
        if user.email_key:
            items.append(self._release(codec.email_guard_key(user.email_key), user))
        # Unconditional: deleting an item that does not exist is not an error.
        leftovers = [codec.code_key(user.user_id, purpose) for purpose in CodePurpose]
        leftovers.append(codec.failures_key(user.user_id))
        items += [{"Delete": {"TableName": self._table, "Key": key}} for key in leftovers]
        items += event_puts(self._table, events)
        async with translate_storage_errors("delete user"):
            codes = await self._transact("delete user", items)
            if codes is None:
                return
            if _failed(codes, 0):
                raise await self._missing_or_changed(user.user_id)
        raise UnexpectedCondition(
            "a guard of the user belongs to another account, or an event id is reused"
        )

    async def replace_password_hash(self, user: User, new_hash: str) -> None:
        """Swap the hash if it is still ``user.password_hash``; the version stays the same.

        Raises ``EtagMismatch`` when the hash changed meanwhile, ``UserNotFound`` when the
        account is gone.
        """
        async with translate_storage_errors("replace password hash"):
            try:
                await self._client.update_item(
                    TableName=self._table,
                    Key=codec.user_key(user.user_id),
                    UpdateExpression="SET #hash = :new",
                    ConditionExpression="#hash = :old",
                    ExpressionAttributeNames={"#hash": "password_hash"},
                    ExpressionAttributeValues={
                        ":new": {"S": new_hash},
                        ":old": {"S": user.password_hash},
                    },
                )
            except ClientError as error:
                if error_code(error) != CONDITION_FAILED:
                    raise
                raise await self._missing_or_changed(user.user_id) from None

    # -- reads --------------------------------------------------------------------------------

    async def get(self, user_id: str) -> User | None:
        """The account with this id, or ``None`` (strongly consistent)."""
        async with translate_storage_errors("get user"):
            item = await self._get_item(codec.user_key(user_id))
        return codec.user_from_item(item) if item is not None else None

    async def find_by_username(self, username_key: str) -> User | None:
        """The account holding this normalised username, or ``None``."""
        user = await self._follow_guard(codec.username_guard_key(username_key))
        return user if user is not None and user.username_key == username_key else None

    async def find_by_email(self, email_key: str) -> User | None:
        """The account holding this normalised e-mail address, or ``None``."""
        if not email_key:
            return None
        user = await self._follow_guard(codec.email_guard_key(email_key))
        return user if user is not None and user.email_key == email_key else None

    async def holders(
        self, *, username_keys: Collection[str], email_keys: Collection[str]
    ) -> Holders:
        """Which accounts hold these keys: their guard items, read by strongly consistent
        ``BatchGetItem`` calls of up to 100 keys. Keys DynamoDB leaves unprocessed (throttling)
        are asked for again with back-off, up to the transaction attempt count."""
        found = Holders()
        # guard partition key -> (the answer's map, the normalised key)
        wanted: dict[str, tuple[dict[str, str], str]] = {}
        keys: list[Item] = []
        for target, make_key, names in (
            (found.usernames, codec.username_guard_key, username_keys),
            (found.emails, codec.email_guard_key, email_keys),
        ):
            for name in names:
                key = make_key(name)
                if key[PARTITION_KEY]["S"] not in wanted:
                    wanted[key[PARTITION_KEY]["S"]] = (target, name)
                    keys.append(key)
        async with translate_storage_errors("find account holders"):
            for start in range(0, len(keys), _BATCH_GET_KEYS):
                for item in await self._batch_get(keys[start : start + _BATCH_GET_KEYS]):
                    target, name = wanted[item[PARTITION_KEY]["S"]]
                    target[name] = item["user_id"]["S"]
        return found

    async def get_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        """The unexpired idempotency record with this key, or ``None``."""
        async with translate_storage_errors("get idempotency record"):
            item = await self._get_item(codec.idempotency_key(key))
        if item is None:
            return None
        expires_at = codec.expires_at(item)
        if expires_at is not None and expires_at < int(self._clock.now().timestamp()):
            return None
        return codec.idempotency_from_item(item)

    async def list_page(
        self, *, state: UserState | None, limit: int, cursor: dict[str, object] | None
    ) -> UserPage:
        """Up to ``limit`` accounts after ``cursor``, shard by shard, optionally in ``state``.

        Raises ``InvalidPageToken`` for a malformed cursor.
        """
        if limit < 1:
            raise ValueError("limit must be positive")
        position = (
            codec.position_from_cursor(cursor, self._shard_count)
            if cursor is not None
            else ListPosition(0)
        )
        users: list[User] = []
        budget = self._list_read_budget
        async with translate_storage_errors("list users"):
            while True:
                wanted = limit - len(users)
                batch = wanted
                if state is not None:
                    batch = max(1, min(max(wanted, _FILTERED_QUERY_MIN), budget))
                response = await self._client.query(**self._shard_query(position, state, batch))
                items = response.get("Items", [])
                budget -= int(response.get("ScannedCount", len(items)))
                for index, item in enumerate(items):
                    users.append(codec.user_from_item(item))
                    if len(users) == limit and index < len(items) - 1:
                        # Items after this one were read but not returned: resume right here.
                        after = ListPosition(position.shard, users[-1].user_id)
                        return UserPage(users, after.to_cursor())
                position = self._next_position(position, response.get("LastEvaluatedKey"))
                if position is None:
                    return UserPage(users, None)
                if len(users) == limit or budget <= 0:
                    return UserPage(users, position.to_cursor())

    # -- helpers ------------------------------------------------------------------------------

    def _shard_query(
        self, position: ListPosition, state: UserState | None, limit: int
    ) -> dict[str, Any]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LIST_INDEX,
            "KeyConditionExpression": "#shard = :shard",
            "ExpressionAttributeNames": {"#shard": "gsi1pk"},
            "ExpressionAttributeValues": {":shard": {"S": codec.shard_partition(position.shard)}},
            "Limit": limit,
        }
        if state is not None:
            query["FilterExpression"] = "#state = :state"
            query["ExpressionAttributeNames"]["#state"] = "state"
            query["ExpressionAttributeValues"][":state"] = {"S": state.name}
        start = position.exclusive_start_key()
        if start is not None:
            query["ExclusiveStartKey"] = start
        return query

    def _next_position(
        self, position: ListPosition, last_evaluated: Item | None
    ) -> ListPosition | None:
        if last_evaluated:
            return ListPosition(position.shard, last_evaluated[LIST_SORT_KEY]["S"])
        if position.shard + 1 < self._shard_count:
            return ListPosition(position.shard + 1)
        return None

    async def _follow_guard(self, guard_key: Item) -> User | None:
        async with translate_storage_errors("find user"):
            guard = await self._get_item(guard_key)
            if guard is None:
                return None
            item = await self._get_item(codec.user_key(guard["user_id"]["S"]))
        return codec.user_from_item(item) if item is not None else None

    async def _get_item(self, key: Item) -> Item | None:
        response = await self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return response.get("Item")

    async def _batch_get(self, keys: list[Item]) -> list[Item]:
        request: dict[str, Any] = {
            "Keys": keys,
            "ConsistentRead": True,
            "ProjectionExpression": "#pk, #owner",
            "ExpressionAttributeNames": {"#pk": PARTITION_KEY, "#owner": "user_id"},
        }
        items: list[Item] = []

        async def send(keys_and_attributes: dict[str, Any]) -> dict[str, Any]:
            response = await self._client.batch_get_item(
                RequestItems={self._table: keys_and_attributes}
            )
            items.extend(response.get("Responses", {}).get(self._table, []))
            return dict(response.get("UnprocessedKeys", {}).get(self._table) or {})

        if await resend_unprocessed(send, request, attempts=self._transaction_attempts):
            raise StorageUnavailable(
                "storage is temporarily unavailable (find account holders: unprocessed keys)"
            )
        return items

    async def _missing_or_changed(self, user_id: str) -> UsermgmtError:
        response = await self._client.get_item(
            TableName=self._table,
            Key=codec.user_key(user_id),
            ConsistentRead=True,
            ProjectionExpression="pk",
        )
        return EtagMismatch() if "Item" in response else UserNotFound()

    async def _transact(
        self, operation: str, items: list[dict[str, Any]]
    ) -> list[str | None] | None:
        """Run one transaction: ``None`` when applied, else the cancellation reason codes."""
        return await transact(self._client, operation, items, attempts=self._transaction_attempts)

    def _put(
        self,
        item: Item,
        condition: str,
        *,
        names: dict[str, str] | None = None,
        values: Item | None = None,
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": condition,
        }
        if names:
            put["ExpressionAttributeNames"] = names
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _put_code(self, code: OneTimeCode) -> dict[str, Any]:
        """Store ``code``, replacing the user's code of that purpose (as ``CodeStore`` does)."""
        return {"Put": {"TableName": self._table, "Item": codec.code_to_item(code)}}

    def _release(self, guard_key: Item, owner: User) -> dict[str, Any]:
        """Delete a guard, but only if ``owner`` holds it."""
        return {
            "Delete": {
                "TableName": self._table,
                "Key": guard_key,
                "ConditionExpression": "#owner = :me",
                "ExpressionAttributeNames": {"#owner": "user_id"},
                "ExpressionAttributeValues": {":me": {"S": owner.user_id}},
            }
        }

    @staticmethod
    def _guard(key: Item, owner: User) -> Item:
        return {**key, "user_id": {"S": owner.user_id}}


def _check_code_owner(code: OneTimeCode | None, user: User) -> None:
    if code is not None and code.user_id != user.user_id:
        raise ValueError("a change of an account can only issue a code of that account")


__all__ = ["DynamoUserRepository", "UtcClock"]
