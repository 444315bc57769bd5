"""The one DynamoDB table of the service: its definition and the layout of its items.

Single-table design; every item has a string partition key ``pk`` and sort key ``sk``.

- user: ``pk = USER#<user_id>``, ``sk = USER``; attributes user_id, username, username_key,
  email, email_key, display_name, state (enum name), email_verified, roles (list of strings,
  possibly empty), create_time and update_time (ISO-8601 UTC with microseconds), version (N),
  password_hash, password_change_required (BOOL), pending_email (possibly empty),
  tokens_valid_after (ISO-8601, absent when unset), notification_channel (enum name: EMAIL,
  SMS, NONE), phone_number (E.164 or empty), and the listing keys gsi1pk and gsi1sk. Items
  written before the newer attributes existed read password_change_required as false,
  pending_email and phone_number as "", tokens_valid_after as unset and notification_channel
  as EMAIL.
- username guard: ``pk = USERNAME#<username_key>``, ``sk = GUARD``; user_id of the holder.
- e-mail guard: ``pk = EMAIL#<email_key>``, ``sk = GUARD``; user_id of the holder (only for a
  non-empty e-mail address: the bootstrap administrator may have none).
- idempotency record: ``pk = IDEMPOTENCY#<key>``, ``sk = RECORD``; fingerprint, user_id and
  expires_at (epoch seconds, the TTL attribute).
- one-time code: ``pk = CODE#<user_id>``, ``sk = <purpose>`` (``VERIFY_EMAIL``,
  ``RESET_PASSWORD``), one per user and purpose; user_id, code_hash, target, created_at and
  valid_until (ISO-8601, the exact expiry), attempts (N) and expires_at (TTL).
- refresh family: ``pk = FAMILY#<family_id>``, ``sk = FAMILY``; family_id, user_id, created_at
  and valid_until (ISO-8601), revoked (BOOL) and expires_at (TTL).
- refresh token: ``pk = REFRESH#<token_hash>``, ``sk = TOKEN``; family_id, user_id,
  family_created_at and valid_until (copies of the family's), used (BOOL) and expires_at (TTL,
  the family's).
- failed sign-ins: ``pk = FAILURES#<subject>`` (a user id or ``login:<login key>``),
  ``sk = COUNTER``; count (N), locked_until (ISO-8601, absent when unset), hard_locked (BOOL,
  absent when unset) and expires_at (TTL; removed by a hard lock, which must not expire).
- outbox event: ``pk = OUTBOX#<shard:02d>`` (one of 8 shards, a stable hash of the event id),
  ``sk = <time>#<event_id>`` (time as ISO-8601 UTC with microseconds, so a shard reads oldest
  first); event_id, type, subject, time, and data (the event's data as JSON text with sorted
  keys). Written in the transaction of the change it describes, deleted once published; no
  TTL, since an event must never vanish unpublished.
- lease: ``pk = LEASE#<name>``, ``sk = LEASE``; owner, until (ISO-8601, the end of the lease)
  and expires_at (TTL, ``until`` rounded up; only tidies up, the lease is free after ``until``).

Only user items carry ``gsi1pk = USERS#<shard:02d>`` and ``gsi1sk = <user_id>``, so the
``users-by-shard`` index is sparse: it holds exactly the accounts, spread over a fixed number of
shards (see ``repository`` for why). ``expires_at`` holds epoch seconds (rounded up); DynamoDB's
TTL removes expired items eventually (often days late), so readers also compare the expiry with
the clock: ``valid_until`` where an item has one, else ``expires_at``.

Deleting an account also deletes its codes and its failed sign-in counter. Its refresh families
and tokens stay until their TTL: no index finds them by user. They stay rotatable at this level,
so whoever rotates a token must refuse it when the family's account no longer exists (the session
service does).
"""

from __future__ import annotations

from typing import Any

LIST_INDEX = "users-by-shard"
TTL_ATTRIBUTE = "expires_at"

PARTITION_KEY = "pk"
SORT_KEY = "sk"
LIST_PARTITION_KEY = "gsi1pk"
LIST_SORT_KEY = "gsi1sk"


def table_definition(table_name: str) -> dict[str, Any]:
    """The keyword arguments of ``CreateTable`` for the service's table (mirrored in Terraform)."""
    return {
        "TableName": table_name,
        "AttributeDefinitions": [
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": SORT_KEY, "AttributeType": "S"},
            {"AttributeName": LIST_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": LIST_SORT_KEY, "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": LIST_INDEX,
                "KeySchema": [
                    {"AttributeName": LIST_PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": LIST_SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"Enabled": True},
    }


__all__ = [
    "LIST_INDEX",
    "LIST_PARTITION_KEY",
    "LIST_SORT_KEY",
    "PARTITION_KEY",
    "SORT_KEY",
    "TTL_ATTRIBUTE",
    "table_definition",
]
