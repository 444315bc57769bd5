"""Relay and sweeper decisions: what gets published, removed, retried, and by whom."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from usermgmt_server.adapters.events.cloudevents import (
    message_attributes,
    message_body,
    to_cloudevent,
)
from usermgmt_server.adapters.events.delivery import PUBLISH_BATCH_LIMIT
from usermgmt_server.adapters.events.relay import OutboxRelay
from usermgmt_server.adapters.events.sweeper import OutboxSweeper
from usermgmt_server.adapters.security.system import ManualClock
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.ports import OutboxBacklog

START = datetime(2026, 1, 1, tzinfo=UTC)


def event(index: int, at: datetime = START) -> DomainEvent:
    return DomainEvent(
        f"id-{index}", "usermgmt.user.registered.v1", f"user-{index}", at, {"n": index}
    )


class FakePublisher:
    """Publishes batches (each call is recorded in ``batches`` as it starts), refusing the
    events named in ``refuse``, or failing every call if ``fail``; a call waits for ``gate``
    when one is given, and ``delay`` seconds."""

    def __init__(
        self,
        fail: bool = False,
        refuse: Sequence[str] = (),
        gate: asyncio.Event | None = None,
        delay: float = 0.0,
    ) -> None:
        self.fail = fail
        self.refuse = set(refuse)
        self.gate = gate
        self.delay = delay
        self.batches: list[list[str]] = []
        self.in_flight = 0
        self.peak = 0

    @property
    def published(self) -> list[str]:
        if self.fail:
            return []
        return [i for batch in self.batches for i in batch if i not in self.refuse]

    async def publish(self, events: Sequence[DomainEvent]) -> dict[str, str]:
        assert 1 <= len(events) <= PUBLISH_BATCH_LIMIT
        self.batches.append([e.event_id for e in events])
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.fail:
            raise ConnectionError("sns down")
        return {e.event_id: "InternalError" for e in events if e.event_id in self.refuse}


class FakeOutbox:
    def __init__(self, events: list[DomainEvent]) -> None:
        self.items = {e.event_id: e for e in events}
        self.removals: list[list[str]] = []

    async def pending(self, *, written_before: datetime, limit: int) -> list[DomainEvent]:
        ready = sorted(
            (e for e in self.items.values() if e.time < written_before), key=lambda e: e.time
        )
        return ready[:limit]

    async def remove(self, events: Sequence[DomainEvent]) -> None:
        self.removals.append([e.event_id for e in events])
        for item in events:
            self.items.pop(item.event_id, None)

    async def backlog(self) -> OutboxBacklog:
        times = [e.time for e in self.items.values()]
        return OutboxBacklog(len(times), min(times) if times else None)


class FakeLeases:
    def __init__(self) -> None:
        self.holder: str | None = None
        self.until = START

    async def acquire(self, name: str, owner: str, *, until: datetime, now: datetime) -> bool:
        if self.holder in (None, owner) or self.until < now:
            self.holder, self.until = owner, until
            return True
        return False


class Observer:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def observe(self, item: DomainEvent) -> None:
        self.seen.append(item.event_id)


async def test_relay_publishes_then_removes_and_shows_the_observer() -> None:
    events = [event(1), event(2)]
    outbox, publisher, observer = FakeOutbox(events), FakePublisher(), Observer()
    relay = OutboxRelay(publisher, outbox, observer=observer)
    relay.committed(events)
    await relay.drain(5)
    assert publisher.batches == [["id-1", "id-2"]]
    assert outbox.removals == [["id-1", "id-2"]] and outbox.items == {}
    assert observer.seen == ["id-1", "id-2"]


async def test_relay_failure_leaves_events_for_the_sweeper() -> None:
    events = [event(1)]
    outbox = FakeOutbox(events)
    relay = OutboxRelay(FakePublisher(fail=True), outbox)
    relay.committed(events)
    await relay.drain(5)
    assert list(outbox.items) == ["id-1"]
    assert relay.failures == 1


async def test_relay_removes_only_what_sns_took_and_leaves_exactly_the_refused_events() -> None:
    events = [event(i) for i in range(6)]
    outbox = FakeOutbox(events)
    relay = OutboxRelay(FakePublisher(refuse=["id-2", "id-4"]), outbox)
    relay.committed(events)
    await relay.drain(5)
    assert outbox.removals == [["id-0", "id-1", "id-3", "id-5"]]
    assert sorted(outbox.items) == ["id-2", "id-4"]
    assert relay.failures == 2


async def test_a_lone_event_is_published_at_once() -> None:
    gate = asyncio.Event()
    publisher = FakePublisher(gate=gate)
    relay = OutboxRelay(publisher, FakeOutbox([event(1)]))
    relay.committed([event(1)])
    await asyncio.sleep(0)  # one turn of the event loop, no timer
    assert publisher.batches == [["id-1"]]
    gate.set()
    await relay.drain(5)


async def test_under_load_events_gather_behind_the_publication_in_flight_in_tens() -> None:
    events = [event(i) for i in range(25)]
    gate = asyncio.Event()
    publisher, outbox = FakePublisher(gate=gate), FakeOutbox(events)
    relay = OutboxRelay(publisher, outbox)
    for item in events:
        relay.committed([item])
        await asyncio.sleep(0)
    # id-0 went out alone; ten waiting make a batch at once; the last four wait for id-0's.
    assert [len(batch) for batch in publisher.batches] == [1, 10, 10]
    gate.set()
    await relay.drain(5)
    assert [len(batch) for batch in publisher.batches] == [1, 10, 10, 4]
    assert sorted(publisher.published) == sorted(e.event_id for e in events)
    assert outbox.items == {} and relay.failures == 0


async def test_relay_limits_publications_in_flight() -> None:
    events = [event(i) for i in range(50)]
    publisher = FakePublisher(delay=0.01)
    relay = OutboxRelay(publisher, FakeOutbox(events), max_in_flight=3)
    for item in events:
        relay.committed([item])
    await relay.drain(5)
    assert publisher.peak == 3
    assert sorted(publisher.published) == sorted(e.event_id for e in events)


async def test_drain_lets_waiting_events_go_out_within_its_time() -> None:
    events = [event(i) for i in range(25)]
    outbox = FakeOutbox(events)
    relay = OutboxRelay(FakePublisher(delay=0.01), outbox, max_in_flight=1)
    for item in events:
        relay.committed([item])
    await relay.drain(5)
    assert outbox.items == {}


async def test_drain_gives_up_after_its_time_leaving_the_events_and_no_task() -> None:
    events = [event(i) for i in range(4)]
    publisher, outbox = FakePublisher(gate=asyncio.Event()), FakeOutbox(events)
    relay = OutboxRelay(publisher, outbox)
    for item in events[:3]:
        relay.committed([item])
    await asyncio.sleep(0)
    assert publisher.batches == [["id-0"]]  # SNS hangs; id-1 and id-2 wait behind it

    await asyncio.wait_for(relay.drain(0.05), timeout=1)

    relay.committed(events[3:])
    await asyncio.sleep(0)
    assert publisher.batches == [["id-0"]]
    assert sorted(outbox.items) == ["id-0", "id-1", "id-2", "id-3"]
    assert not [
        task for task in asyncio.all_tasks() if "OutboxRelay" in task.get_coro().__qualname__
    ]


def sweeper(
    outbox: FakeOutbox, publisher: FakePublisher, leases: FakeLeases, clock: ManualClock
) -> OutboxSweeper:
    return OutboxSweeper(
        outbox, publisher, leases, clock, interval=timedelta(seconds=5), grace=timedelta(seconds=10)
    )


async def test_sweeper_publishes_only_events_older_than_the_grace() -> None:
    clock = ManualClock(START + timedelta(seconds=30))
    outbox = FakeOutbox([event(1, START), event(2, START + timedelta(seconds=25))])
    publisher = FakePublisher()
    assert await sweeper(outbox, publisher, FakeLeases(), clock).sweep_once() == 1
    assert publisher.published == ["id-1"]
    assert list(outbox.items) == ["id-2"]


async def test_only_the_lease_holder_sweeps_until_the_lease_expires() -> None:
    clock = ManualClock(START + timedelta(minutes=1))
    leases = FakeLeases()
    outbox = FakeOutbox([event(1), event(2)])
    first, second = FakePublisher(), FakePublisher()
    a, b = sweeper(outbox, first, leases, clock), sweeper(outbox, second, leases, clock)
    outbox.items["id-1"] = event(1)
    assert await a.sweep_once() == 2
    outbox.items["id-3"] = event(3)
    assert await b.sweep_once() == 0
    clock.advance(seconds=16)  # three intervals: a's lease has run out
    assert await b.sweep_once() == 1
    assert second.published == ["id-3"]


async def test_sweeper_stops_a_pass_at_the_first_failure_and_keeps_the_rest() -> None:
    clock = ManualClock(START + timedelta(minutes=1))
    outbox = FakeOutbox([event(1), event(2)])
    down = sweeper(outbox, FakePublisher(fail=True), FakeLeases(), clock)
    assert await down.sweep_once() == 0
    assert len(outbox.items) == 2 and down.failures == 1


async def test_sweeper_publishes_its_page_ten_at_a_time_and_removes_it_in_one_go() -> None:
    clock = ManualClock(START + timedelta(minutes=1))
    outbox = FakeOutbox([event(i, START + timedelta(microseconds=i)) for i in range(25)])
    publisher = FakePublisher()
    sweep = sweeper(outbox, publisher, FakeLeases(), clock)
    assert await sweep.sweep_once() == 25
    assert [len(batch) for batch in publisher.batches] == [10, 10, 5]
    assert publisher.published == [f"id-{i}" for i in range(25)]
    assert outbox.removals == [publisher.published] and outbox.items == {}
    assert sweep.failures == 0


async def test_a_refused_event_ends_the_pass_and_only_it_and_the_rest_stay() -> None:
    clock = ManualClock(START + timedelta(minutes=1))
    outbox = FakeOutbox([event(i, START + timedelta(microseconds=i)) for i in range(25)])
    publisher = FakePublisher(refuse=["id-13"])
    sweep = sweeper(outbox, publisher, FakeLeases(), clock)
    assert await sweep.sweep_once() == 19
    assert [len(batch) for batch in publisher.batches] == [10, 10]
    assert sorted(outbox.items) == sorted(["id-13", *(f"id-{i}" for i in range(20, 25))])
    assert sweep.failures == 1 and sweep.published == 19


def test_cloudevent_shape_and_attributes() -> None:
    item = event(7)
    body = to_cloudevent(item)
    assert body == {
        "specversion": "1.0",
        "id": "id-7",
        "source": "usermgmt",
        "type": "usermgmt.user.registered.v1",
        "time": START.isoformat(),
        "subject": "user-7",
        "datacontenttype": "application/json",
        "data": {"n": 7},
    }
    assert '"id":"id-7"' in message_body(item)
    assert message_attributes(item)["event_type"]["StringValue"] == item.type
    assert message_attributes(item)["schema_version"]["StringValue"] == "1"
