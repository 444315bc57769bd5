"""The ``LoginFailureStore`` contract: shared atomic counters, extending locks, hard locks."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.storage.backends import StorageBackend
from tests.storage.factories import unique
from usermgmt_server.domain.model import LoginFailures
from usermgmt_server.domain.ports import LoginFailureStore

MEMORY = timedelta(days=1)


async def test_failures_count_up_and_clear(
    failures: LoginFailureStore, backend: StorageBackend
) -> None:
    subject = unique("subject")
    assert await failures.get_failures(subject) == LoginFailures()

    counts = [
        await failures.record_failure(subject, expires_at=backend.clock.now() + MEMORY)
        for _ in range(3)
    ]

    assert counts == [1, 2, 3]
    assert await failures.get_failures(subject) == LoginFailures(count=3)
    assert await failures.get_failures(unique("other")) == LoginFailures()
    await failures.clear_failures(subject)
    await failures.clear_failures(subject)
    assert await failures.get_failures(subject) == LoginFailures()
    assert await failures.record_failure(subject, expires_at=backend.clock.now() + MEMORY) == 1


async def test_concurrent_failures_are_all_counted(
    failures: LoginFailureStore, backend: StorageBackend
) -> None:
    subject = unique("subject")
    expires_at = backend.clock.now() + MEMORY

    counts = await asyncio.gather(
        *(failures.record_failure(subject, expires_at=expires_at) for _ in range(50))
    )

    assert sorted(counts) == list(range(1, 51))
    assert (await failures.get_failures(subject)).count == 50


async def test_counters_are_forgotten_after_they_expire(
    failures: LoginFailureStore, backend: StorageBackend
) -> None:
    subject = unique("subject")
    now = backend.clock.now()
    await failures.record_failure(subject, expires_at=now + timedelta(minutes=1))
    await failures.record_failure(subject, expires_at=now + MEMORY)
    await failures.lock(subject, until=now + timedelta(minutes=5), hard=False)

    backend.clock.advance(timedelta(hours=23))
    assert (await failures.get_failures(subject)).count == 2
    backend.clock.advance(timedelta(hours=1, seconds=1))

    assert await failures.get_failures(subject) == LoginFailures()
    # A failure after expiry starts a new counter, without the old lock.
    count = await failures.record_failure(subject, expires_at=backend.clock.now() + MEMORY)
    assert count == 1
    assert await failures.get_failures(subject) == LoginFailures(count=1)


async def test_locks_only_ever_get_longer(
    failures: LoginFailureStore, backend: StorageBackend
) -> None:
    subject = unique("subject")
    now = backend.clock.now()
    await failures.record_failure(subject, expires_at=now + MEMORY)
    long, short = now + timedelta(minutes=10), now + timedelta(minutes=2)

    await failures.lock(subject, until=long, hard=False)
    await failures.lock(subject, until=short, hard=False)

    stored = await failures.get_failures(subject)
    assert stored == LoginFailures(count=1, locked_until=long)
    assert stored.locked(now + timedelta(minutes=9)) and not stored.locked(long)
    longer = long + timedelta(microseconds=1)
    await failures.lock(subject, until=longer, hard=False)
    assert (await failures.get_failures(subject)).locked_until == longer
    assert (await failures.get_failures(subject)).count == 1


async def test_a_hard_lock_outlives_the_counter_memory_until_cleared(
    failures: LoginFailureStore, backend: StorageBackend
) -> None:
    subject = unique("subject")
    await failures.record_failure(subject, expires_at=backend.clock.now() + MEMORY)

    await failures.lock(subject, until=None, hard=True)
    backend.clock.advance(MEMORY * 30)
    count = await failures.record_failure(subject, expires_at=backend.clock.now() + MEMORY)
    backend.clock.advance(MEMORY * 30)

    stored = await failures.get_failures(subject)
    assert count == 2
    assert stored.hard_locked and stored.count == 2
    assert stored.locked(backend.clock.now())
    # A soft lock neither replaces nor weakens it.
    await failures.lock(subject, until=backend.clock.now() + timedelta(minutes=1), hard=False)
    assert (await failures.get_failures(subject)).hard_locked
    await failures.clear_failures(subject)
    assert await failures.get_failures(subject) == LoginFailures()


async def test_a_lock_needs_an_end_unless_it_is_hard(failures: LoginFailureStore) -> None:
    with pytest.raises(ValueError):
        await failures.lock(unique("subject"), until=None, hard=False)


async def test_blocked_attempts_leave_count_and_lock_alone(
    failures: LoginFailureStore, backend: StorageBackend
) -> None:
    subject = unique("subject")
    await failures.record_blocked(subject)  # nothing stored yet: nothing is created
    assert await failures.get_failures(subject) == LoginFailures()
    await failures.record_failure(subject, expires_at=backend.clock.now() + MEMORY)
    until = backend.clock.now() + timedelta(seconds=30)
    await failures.lock(subject, until=until, hard=False)
    before = await failures.get_failures(subject)
    for _ in range(3):
        await failures.record_blocked(subject)
    assert await failures.get_failures(subject) == before
    assert before.count == 1 and before.locked_until == until
