"""Progressive back-off arithmetic."""

from __future__ import annotations

from datetime import timedelta

from usermgmt_server.domain.lockout import LockoutPolicy


def test_no_delay_below_threshold() -> None:
    policy = LockoutPolicy()
    assert [policy.delay_after(n) for n in range(5)] == [None] * 5


def test_delay_doubles_from_the_threshold() -> None:
    policy = LockoutPolicy()
    assert [policy.delay_after(n).total_seconds() for n in range(5, 10)] == [1, 2, 4, 8, 16]


def test_delay_is_capped_even_after_very_many_failures() -> None:
    policy = LockoutPolicy()
    assert policy.delay_after(15) == timedelta(minutes=15)
    assert policy.delay_after(10_000) == timedelta(minutes=15)


def test_hard_lock_at_the_limit() -> None:
    policy = LockoutPolicy()
    assert not policy.hard_locked_after(99)
    assert policy.hard_locked_after(100)
