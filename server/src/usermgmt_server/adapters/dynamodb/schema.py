"""The one DynamoDB table of the service: its definition and the layout of its items.

Single-table design; every item has a string partition key ``pk`` and sort key ``sk``.

- user: ``pk = USER#<user_id>``, ``sk = USER``; attributes user_id, username, username_key,
  email, email_key, display_name, state (enum name), email_verified, roles (list of strings,
  possibly empty), create_time and update_time (ISO-8601 UTC with microseconds), version (N),
  password_hash, and the listing keys gsi1pk and gsi1sk.
- username guard: ``pk = USERNAME#<username_key>``, ``sk = GUARD``; user_id of the holder.
- e-mail guard: ``pk = EMAIL#<email_key>``, ``sk = GUARD``; user_id of the holder (only for a
  non-empty e-mail address: the bootstrap administrator may have none).
- idempotency record: ``pk = IDEMPOTENCY#<key>``, ``sk = RECORD``; fingerprint, user_id and
  expires_at (epoch seconds, the TTL attribute).

Only user items carry ``gsi1pk = USERS#<shard:02d>`` and ``gsi1sk = <user_id>``, so the
``users-by-shard`` index is sparse: it holds exactly the accounts, spread over a fixed number of
shards (see ``repository`` for why). ``expires_at`` holds epoch seconds; DynamoDB's TTL removes
expired items eventually, so readers also compare it with the clock.
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
