"""Delivery markers in DynamoDB: claims, leases, release and the final "sent"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from usermgmt_server.adapters.dynamodb.clients import AwsClients
from usermgmt_server.notifier.markers import ClaimResult, NotificationMarkers, marker_key

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


@pytest.fixture
def event_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def markers(messaging: AwsClients, marker_table: str) -> tuple[NotificationMarkers, ...]:
    """Two notifiers sharing the table."""
    return tuple(NotificationMarkers(messaging.dynamodb, marker_table) for _ in range(2))


async def test_a_live_claim_holds_off_others_until_its_lease_runs_out(markers, event_id) -> None:
    first, second = markers

    assert await first.claim(event_id, NOW, LEASE) is ClaimResult.CLAIMED
    assert await second.claim(event_id, NOW + LEASE, LEASE) is ClaimResult.IN_PROGRESS
    assert await first.claim(event_id, NOW, LEASE) is ClaimResult.IN_PROGRESS
    later = NOW + LEASE + timedelta(microseconds=1)
    assert await second.claim(event_id, later, LEASE) is ClaimResult.CLAIMED


async def test_a_sent_marker_is_final(markers, event_id) -> None:
    first, second = markers
    await first.claim(event_id, NOW, LEASE)
    await first.mark_sent(event_id, NOW)

    assert await second.claim(event_id, NOW + timedelta(days=1), LEASE) is ClaimResult.ALREADY_SENT
    await first.release(event_id)
    assert await first.state(event_id) == "sent"


async def test_release_frees_only_the_callers_own_claim(markers, event_id) -> None:
    first, second = markers
    await first.claim(event_id, NOW, LEASE)

    await second.release(event_id)
    assert await first.state(event_id) == "sending"

    await first.release(event_id)
    assert await first.state(event_id) is None
    assert await second.claim(event_id, NOW, LEASE) is ClaimResult.CLAIMED


async def test_markers_expire_after_the_retention(
    messaging: AwsClients, marker_table: str, event_id: str
) -> None:
    markers = NotificationMarkers(messaging.dynamodb, marker_table, retention=timedelta(days=2))
    await markers.claim(event_id, NOW, LEASE)
    await markers.mark_sent(event_id, NOW)

    item = (await messaging.dynamodb.get_item(TableName=marker_table, Key=marker_key(event_id)))[
        "Item"
    ]
    assert item["pk"] == {"S": f"NOTIFIED#{event_id}"} and item["sk"] == {"S": "NOTIFIER"}
    assert int(item["expires_at"]["N"]) == int((NOW + timedelta(days=2)).timestamp())
