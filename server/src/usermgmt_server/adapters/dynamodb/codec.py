"""Pure conversions between domain values and DynamoDB items (low-level attribute values).

Items are written in DynamoDB's typed JSON (``{"S": ...}``, ``{"N": ...}``) because the service
talks to the low-level client; no Decimal or float ever enters the picture.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from usermgmt_server.adapters.dynamodb.schema import (
    LIST_PARTITION_KEY,
    LIST_SORT_KEY,
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
)
from usermgmt_server.domain.errors import InvalidPageToken
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.model import (
    CodePurpose,
    IdempotencyRecord,
    LoginFailures,
    NotificationChannel,
    OneTimeCode,
    RefreshFamily,
    User,
    UserState,
)

Item = dict[str, dict[str, Any]]

USER_SORT_KEY = "USER"
GUARD_SORT_KEY = "GUARD"
RECORD_SORT_KEY = "RECORD"
FAMILY_SORT_KEY = "FAMILY"
TOKEN_SORT_KEY = "TOKEN"
COUNTER_SORT_KEY = "COUNTER"
LEASE_SORT_KEY = "LEASE"
# The number of outbox partitions every writer spreads events over (see ``schema``); changing it
# strands the events already written under the old count.
OUTBOX_SHARD_COUNT = 8
# User attributes that are absent (rather than empty) when the value is unset; an update
# REMOVEs them.
OPTIONAL_USER_ATTRIBUTES = ("tokens_valid_after",)
_USER_ID_MAX_LENGTH = 128


# -- keys ---------------------------------------------------------------------------------------


def user_key(user_id: str) -> Item:
    """Primary key of the user item."""
    return {PARTITION_KEY: {"S": f"USER#{user_id}"}, SORT_KEY: {"S": USER_SORT_KEY}}


def username_guard_key(username_key: str) -> Item:
    """Primary key of the item that reserves a normalised username."""
    return {PARTITION_KEY: {"S": f"USERNAME#{username_key}"}, SORT_KEY: {"S": GUARD_SORT_KEY}}


def email_guard_key(email_key: str) -> Item:
    """Primary key of the item that reserves a normalised e-mail address."""
    return {PARTITION_KEY: {"S": f"EMAIL#{email_key}"}, SORT_KEY: {"S": GUARD_SORT_KEY}}


def idempotency_key(key: str) -> Item:
    """Primary key of an idempotency record."""
    return {PARTITION_KEY: {"S": f"IDEMPOTENCY#{key}"}, SORT_KEY: {"S": RECORD_SORT_KEY}}


def code_key(user_id: str, purpose: CodePurpose) -> Item:
    """Primary key of the one-time code of ``user_id`` for ``purpose``."""
    return {PARTITION_KEY: {"S": f"CODE#{user_id}"}, SORT_KEY: {"S": purpose.value}}


def family_key(family_id: str) -> Item:
    """Primary key of a refresh-token family."""
    return {PARTITION_KEY: {"S": f"FAMILY#{family_id}"}, SORT_KEY: {"S": FAMILY_SORT_KEY}}


def refresh_token_key(token_hash: str) -> Item:
    """Primary key of a refresh token (by its keyed hash)."""
    return {PARTITION_KEY: {"S": f"REFRESH#{token_hash}"}, SORT_KEY: {"S": TOKEN_SORT_KEY}}


def failures_key(subject: str) -> Item:
    """Primary key of the failed sign-in counter of ``subject``."""
    return {PARTITION_KEY: {"S": f"FAILURES#{subject}"}, SORT_KEY: {"S": COUNTER_SORT_KEY}}


def lease_key(name: str) -> Item:
    """Primary key of the lease ``name``."""
    return {PARTITION_KEY: {"S": f"LEASE#{name}"}, SORT_KEY: {"S": LEASE_SORT_KEY}}


def outbox_partition(shard: int) -> str:
    """The partition key of an outbox shard."""
    return f"OUTBOX#{shard:02d}"


def outbox_key(event: DomainEvent, shard_count: int = OUTBOX_SHARD_COUNT) -> Item:
    """Primary key of the outbox item of ``event``: shard by event id, sorted by time."""
    return {
        PARTITION_KEY: {"S": outbox_partition(shard_of(event.event_id, shard_count))},
        SORT_KEY: {"S": f"{format_time(event.time)}#{event.event_id}"},
    }


def shard_of(key: str, shard_count: int) -> int:
    """The shard of a key (a user id, an event id): a stable hash, identical in every process."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % shard_count


def shard_partition(shard: int) -> str:
    """The ``gsi1pk`` value of a listing shard."""
    return f"USERS#{shard:02d}"


# -- users --------------------------------------------------------------------------------------


def user_to_item(user: User, shard_count: int) -> Item:
    """The complete user item, listing keys included."""
    return {
        **user_key(user.user_id),
        **user_attributes(user),
        "password_hash": {"S": user.password_hash},
        LIST_PARTITION_KEY: {"S": shard_partition(shard_of(user.user_id, shard_count))},
        LIST_SORT_KEY: {"S": user.user_id},
    }


def user_attributes(user: User) -> Item:
    """The attributes an update may change (everything but keys and the password hash).

    Unset optional attributes (``OPTIONAL_USER_ATTRIBUTES``) are left out.
    """
    attributes: Item = {
        "user_id": {"S": user.user_id},
        "username": {"S": user.username},
        "username_key": {"S": user.username_key},
        "email": {"S": user.email},
        "email_key": {"S": user.email_key},
        "display_name": {"S": user.display_name},
        "state": {"S": user.state.name},
        "email_verified": {"BOOL": user.email_verified},
        "roles": {"L": [{"S": role} for role in user.roles]},
        "create_time": {"S": format_time(user.create_time)},
        "update_time": {"S": format_time(user.update_time)},
        "version": {"N": str(user.version)},
        "password_change_required": {"BOOL": user.password_change_required},
        "pending_email": {"S": user.pending_email},
        "notification_channel": {"S": user.notification_channel.name},
        "phone_number": {"S": user.phone_number},
    }
    if user.tokens_valid_after is not None:
        attributes["tokens_valid_after"] = {"S": format_time(user.tokens_valid_after)}
    return attributes


def user_from_item(item: Item) -> User:
    """The account stored in a user item (attributes added later read as their defaults)."""
    valid_after = item.get("tokens_valid_after")
    channel = item.get("notification_channel")
    return User(
        user_id=item["user_id"]["S"],
        username=item["username"]["S"],
        username_key=item["username_key"]["S"],
        email=item["email"]["S"],
        email_key=item["email_key"]["S"],
        display_name=item["display_name"]["S"],
        state=UserState[item["state"]["S"]],
        email_verified=item["email_verified"]["BOOL"],
        roles=tuple(role["S"] for role in item["roles"]["L"]),
        create_time=parse_time(item["create_time"]["S"]),
        update_time=parse_time(item["update_time"]["S"]),
        version=int(item["version"]["N"]),
        password_hash=item["password_hash"]["S"],
        tokens_valid_after=parse_time(valid_after["S"]) if valid_after is not None else None,
        password_change_required=item.get("password_change_required", {"BOOL": False})["BOOL"],
        pending_email=item.get("pending_email", {"S": ""})["S"],
        notification_channel=(
            NotificationChannel[channel["S"]] if channel is not None else NotificationChannel.EMAIL
        ),
        phone_number=item.get("phone_number", {"S": ""})["S"],
    )


def format_time(moment: datetime) -> str:
    """ISO-8601 in UTC with microseconds, so text order is time order and parsing is exact."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    """The aware UTC datetime written by ``format_time``."""
    return datetime.fromisoformat(text).astimezone(UTC)


# -- idempotency records ------------------------------------------------------------------------


def idempotency_to_item(record: IdempotencyRecord, expires_at: datetime) -> Item:
    """The item of an idempotency record that DynamoDB's TTL removes after ``expires_at``."""
    return {
        **idempotency_key(record.key),
        "fingerprint": {"S": record.fingerprint},
        "user_id": {"S": record.user_id},
        TTL_ATTRIBUTE: {"N": str(int(expires_at.timestamp()))},
    }


def idempotency_from_item(item: Item) -> IdempotencyRecord:
    """The idempotency record stored in ``item``."""
    key = item[PARTITION_KEY]["S"].removeprefix("IDEMPOTENCY#")
    return IdempotencyRecord(
        key=key, fingerprint=item["fingerprint"]["S"], user_id=item["user_id"]["S"]
    )


def epoch_seconds(moment: datetime) -> int:
    """``moment`` as whole epoch seconds, rounded up: a TTL never removes an item early."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return math.ceil(moment.timestamp())


def expires_at(item: Item) -> int | None:
    """The TTL of an item in epoch seconds, if it has one."""
    value = item.get(TTL_ATTRIBUTE)
    return int(value["N"]) if value is not None else None


# -- one-time codes -----------------------------------------------------------------------------


def code_to_item(code: OneTimeCode) -> Item:
    """The item of a one-time code; ``valid_until`` is exact, ``expires_at`` is its TTL."""
    return {
        **code_key(code.user_id, code.purpose),
        "user_id": {"S": code.user_id},
        "code_hash": {"S": code.code_hash},
        "target": {"S": code.target},
        "created_at": {"S": format_time(code.created_at)},
        "valid_until": {"S": format_time(code.expires_at)},
        "attempts": {"N": str(code.attempts)},
        TTL_ATTRIBUTE: {"N": str(epoch_seconds(code.expires_at))},
    }


def code_from_item(item: Item) -> OneTimeCode:
    """The one-time code stored in ``item``."""
    return OneTimeCode(
        user_id=item["user_id"]["S"],
        purpose=CodePurpose(item[SORT_KEY]["S"]),
        code_hash=item["code_hash"]["S"],
        target=item["target"]["S"],
        created_at=parse_time(item["created_at"]["S"]),
        expires_at=parse_time(item["valid_until"]["S"]),
        attempts=int(item["attempts"]["N"]),
    )


# -- refresh tokens -----------------------------------------------------------------------------


def family_to_item(family: RefreshFamily) -> Item:
    """The item of a new (unrevoked) refresh-token family."""
    return {
        **family_key(family.family_id),
        "family_id": {"S": family.family_id},
        "user_id": {"S": family.user_id},
        "created_at": {"S": format_time(family.created_at)},
        "valid_until": {"S": format_time(family.expires_at)},
        "revoked": {"BOOL": False},
        TTL_ATTRIBUTE: {"N": str(epoch_seconds(family.expires_at))},
    }


def refresh_token_to_item(token_hash: str, family: RefreshFamily) -> Item:
    """The item of an unused refresh token of ``family``.

    It carries a copy of the family's fields, so a rotation can name the family without reading
    the family item; the family item stays the only place where revocation is recorded.
    """
    return {
        **refresh_token_key(token_hash),
        "family_id": {"S": family.family_id},
        "user_id": {"S": family.user_id},
        "family_created_at": {"S": format_time(family.created_at)},
        "valid_until": {"S": format_time(family.expires_at)},
        "used": {"BOOL": False},
        TTL_ATTRIBUTE: {"N": str(epoch_seconds(family.expires_at))},
    }


def family_from_item(item: Item) -> RefreshFamily:
    """The family stored in a family item."""
    return RefreshFamily(
        family_id=item["family_id"]["S"],
        user_id=item["user_id"]["S"],
        created_at=parse_time(item["created_at"]["S"]),
        expires_at=parse_time(item["valid_until"]["S"]),
    )


def family_from_token_item(item: Item) -> RefreshFamily:
    """The family a refresh-token item belongs to, from the copy the token carries."""
    return RefreshFamily(
        family_id=item["family_id"]["S"],
        user_id=item["user_id"]["S"],
        created_at=parse_time(item["family_created_at"]["S"]),
        expires_at=parse_time(item["valid_until"]["S"]),
    )


# -- login failures -----------------------------------------------------------------------------


def failures_from_item(item: Item) -> LoginFailures:
    """The counter stored in a failures item (missing attributes read as zero/unset)."""
    locked_until = item.get("locked_until")
    return LoginFailures(
        count=int(item.get("count", {"N": "0"})["N"]),
        locked_until=parse_time(locked_until["S"]) if locked_until is not None else None,
        hard_locked=item.get("hard_locked", {"BOOL": False})["BOOL"],
    )


# -- outbox and leases --------------------------------------------------------------------------


def event_to_item(event: DomainEvent, shard_count: int = OUTBOX_SHARD_COUNT) -> Item:
    """The outbox item of ``event`` (no TTL: an unpublished event must never expire)."""
    return {
        **outbox_key(event, shard_count),
        "event_id": {"S": event.event_id},
        "type": {"S": event.type},
        "subject": {"S": event.subject},
        "time": {"S": format_time(event.time)},
        "data": {"S": json.dumps(dict(event.data), sort_keys=True)},
    }


def event_from_item(item: Item) -> DomainEvent:
    """The event stored in an outbox item."""
    return DomainEvent(
        event_id=item["event_id"]["S"],
        type=item["type"]["S"],
        subject=item["subject"]["S"],
        time=parse_time(item["time"]["S"]),
        data=json.loads(item["data"]["S"]),
    )


def lease_to_item(name: str, owner: str, until: datetime) -> Item:
    """The item of lease ``name`` held by ``owner`` until ``until`` (its TTL, rounded up)."""
    return {
        **lease_key(name),
        "owner": {"S": owner},
        "until": {"S": format_time(until)},
        TTL_ATTRIBUTE: {"N": str(epoch_seconds(until))},
    }


# -- listing cursors ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListPosition:
    """Where a listing resumes: in ``shard``, after the account ``after`` (or at its start)."""

    shard: int
    after: str | None = None

    def to_cursor(self) -> dict[str, object]:
        """The small JSON-able cursor handed to the domain (it signs it into a page token)."""
        if self.after is None:
            return {"shard": self.shard}
        return {"shard": self.shard, "after": self.after}

    def exclusive_start_key(self) -> Item | None:
        """The ``ExclusiveStartKey`` of an index query resuming at this position."""
        if self.after is None:
            return None
        return {
            **user_key(self.after),
            LIST_PARTITION_KEY: {"S": shard_partition(self.shard)},
            LIST_SORT_KEY: {"S": self.after},
        }


def position_from_cursor(cursor: dict[str, object], shard_count: int) -> ListPosition:
    """Validate a cursor that came back from a caller; ``InvalidPageToken`` if malformed."""
    if not isinstance(cursor, dict) or not set(cursor) <= {"shard", "after"}:
        raise InvalidPageToken("is malformed")
    shard = cursor.get("shard")
    # bool is an int subclass; a cursor never carries one.
    if not isinstance(shard, int) or isinstance(shard, bool) or not 0 <= shard < shard_count:
        raise InvalidPageToken("is malformed")
    if "after" not in cursor:
        return ListPosition(shard)
    after = cursor["after"]
    if (
        not isinstance(after, str)
        or not 0 < len(after) <= _USER_ID_MAX_LENGTH
        or shard_of(after, shard_count) != shard
    ):
        raise InvalidPageToken("is malformed")
    return ListPosition(shard, after)


__all__ = [
    "COUNTER_SORT_KEY",
    "FAMILY_SORT_KEY",
    "GUARD_SORT_KEY",
    "LEASE_SORT_KEY",
    "OPTIONAL_USER_ATTRIBUTES",
    "OUTBOX_SHARD_COUNT",
    "RECORD_SORT_KEY",
    "TOKEN_SORT_KEY",
    "USER_SORT_KEY",
    "Item",
    "ListPosition",
    "code_from_item",
    "code_key",
    "code_to_item",
    "email_guard_key",
    "epoch_seconds",
    "event_from_item",
    "event_to_item",
    "expires_at",
    "failures_from_item",
    "failures_key",
    "family_from_item",
    "family_from_token_item",
    "family_key",
    "family_to_item",
    "format_time",
    "idempotency_from_item",
    "idempotency_key",
    "idempotency_to_item",
    "lease_key",
    "lease_to_item",
    "outbox_key",
    "outbox_partition",
    "parse_time",
    "position_from_cursor",
    "refresh_token_key",
    "refresh_token_to_item",
    "shard_of",
    "shard_partition",
    "user_attributes",
    "user_from_item",
    "user_key",
    "user_to_item",
    "username_guard_key",
]
