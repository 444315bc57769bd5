"""System clock, manual clock and random user ids."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from usermgmt_server.adapters.security.system import ManualClock, RandomUserIds, SystemClock


def test_system_clock_is_aware_utc_now() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)


def test_manual_clock_stands_still_until_moved() -> None:
    clock = ManualClock()
    start = clock.now()
    assert start.tzinfo is not None and clock.now() == start
    assert clock.advance(timedelta(minutes=1)) == start + timedelta(minutes=1)
    assert clock.advance(seconds=30) == start + timedelta(seconds=90)
    clock.set(datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2030, 1, 1, 10, tzinfo=UTC)


def test_manual_clock_needs_aware_times() -> None:
    with pytest.raises(ValueError):
        ManualClock(datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        ManualClock().set(datetime(2025, 1, 1))


def test_user_ids_are_url_safe_random_uuid4() -> None:
    ids = RandomUserIds()
    made = [ids.new_user_id() for _ in range(1000)]
    assert len(set(made)) == 1000
    for user_id in made:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", user_id)
        assert uuid.UUID(user_id).version == 4
