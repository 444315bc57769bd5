"""The ``Outbox`` contract: what is pending, in which order, removal and the backlog."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from tests.storage.backends import StorageBackend
from tests.storage.factories import make_event, unique
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.ports import Outbox, OutboxBacklog


async def _write(backend: StorageBackend, events: Sequence[DomainEvent]) -> None:
    """Put ``events`` into the outbox through a writer (one transaction)."""
    await backend.failures.clear_failures(unique("subject"), events=events)


def _spread(
    start: datetime, count: int, step: timedelta = timedelta(seconds=1)
) -> list[DomainEvent]:
    return [make_event(unique("user"), start + step * index) for index in range(count)]


async def test_an_empty_outbox_has_nothing_pending(outbox: Outbox, backend: StorageBackend) -> None:
    assert await outbox.pending(written_before=backend.clock.now(), limit=10) == []
    assert await outbox.backlog() == OutboxBacklog(count=0, oldest=None)


async def test_pending_returns_strictly_older_events_oldest_first(
    outbox: Outbox, backend: StorageBackend
) -> None:
    start = backend.clock.now()
    events = _spread(start, 10)
    cutoff = start + timedelta(seconds=5)
    just_before = make_event("edge", cutoff - timedelta(microseconds=1))
    at_cutoff = make_event("edge", cutoff)
    # Written in reverse, so the order cannot come from the writes.
    await _write(backend, [*reversed(events), at_cutoff, just_before])

    pending = await outbox.pending(written_before=cutoff, limit=100)

    assert pending == [*events[:5], just_before]
    assert pending[0].time.tzinfo is not None
    assert await outbox.pending(written_before=start, limit=100) == []
    everything = await outbox.pending(written_before=start + timedelta(days=1), limit=100)
    assert sorted(e.event_id for e in everything) == sorted(
        e.event_id for e in [*events, at_cutoff, just_before]
    )


async def test_pending_respects_the_limit_and_drains_everything_once(
    outbox: Outbox, backend: StorageBackend
) -> None:
    events = _spread(backend.clock.now(), 30, timedelta(milliseconds=10))
    await _write(backend, events)
    later = backend.clock.now() + timedelta(days=1)
    seen: list[DomainEvent] = []

    while batch := await outbox.pending(written_before=later, limit=7):
        assert len(batch) <= 7
        assert batch == sorted(batch, key=lambda event: (event.time, event.event_id))
        await outbox.remove(batch)
        seen += batch

    assert len(seen) == len(events)
    assert {e.event_id: e for e in seen} == {e.event_id: e for e in events}


async def test_remove_is_idempotent(outbox: Outbox, backend: StorageBackend) -> None:
    kept, removed = _spread(backend.clock.now(), 2)
    await _write(backend, [kept, removed])

    await outbox.remove([removed])
    await outbox.remove([removed, removed, make_event("never-written")])
    await outbox.remove([])

    later = backend.clock.now() + timedelta(days=1)
    assert await outbox.pending(written_before=later, limit=10) == [kept]


async def test_remove_takes_more_events_than_one_batch_write_and_skips_gone_ones(
    outbox: Outbox, backend: StorageBackend
) -> None:
    events = _spread(backend.clock.now(), 60, timedelta(milliseconds=10))
    for start in range(0, len(events), 20):
        await _write(backend, events[start : start + 20])
    kept = events[::7]
    gone = [make_event(unique("gone")) for _ in range(10)]
    await outbox.remove(events[1:3])  # gone before the big removal names them again

    await outbox.remove([e for e in events if e not in kept] + gone)

    later = backend.clock.now() + timedelta(days=1)
    assert await outbox.pending(written_before=later, limit=100) == kept
    assert (await outbox.backlog()).count == len(kept)


async def test_backlog_counts_every_shard_and_finds_the_oldest(
    outbox: Outbox, backend: StorageBackend
) -> None:
    start = backend.clock.now()
    events = _spread(start, 40, timedelta(minutes=1))
    await _write(backend, events[20:])
    await _write(backend, events[:20])

    assert await outbox.backlog() == OutboxBacklog(count=40, oldest=start)

    await outbox.remove(events[:2])
    assert await outbox.backlog() == OutboxBacklog(count=38, oldest=events[2].time)
