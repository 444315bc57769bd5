"""Publishes a transaction's events right after it commits, without delaying the RPC."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from usermgmt_server.adapters.events.delivery import (
    PUBLISH_BATCH_LIMIT,
    Publisher,
    publish_and_remove,
)
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.ports import Outbox


class EventObserver(Protocol):
    """Sees every committed event (tests and local tooling)."""

    async def observe(self, event: DomainEvent) -> None:
        """Look at ``event``."""
        ...


class OutboxRelay:
    """``EventRelay``: publish committed events in background tasks, in batches of up to ten,
    then remove them from the outbox.

    Committed events join a queue. A publication of fewer than ten starts at once unless
    another such publication is in flight; meanwhile events gather and leave together when it
    ends, or as soon as ten are waiting. So a lone event goes out immediately, with no timer,
    and under load events go out ten at a time. At most ``max_in_flight`` publications run at
    once so a slow SNS cannot pile up tasks. A failure leaves its events in the outbox for the
    sweeper (``failures`` counts them); so does ``drain`` for whatever it has to give up.
    """

    def __init__(
        self,
        publisher: Publisher,
        outbox: Outbox,
        *,
        observer: EventObserver | None = None,
        opener: Callable[[DomainEvent], DomainEvent] = lambda event: event,
        max_in_flight: int = 64,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._opener = opener
        self._publisher = publisher
        self._outbox = outbox
        self._observer = observer
        self._max_in_flight = max_in_flight
        self._waiting: deque[DomainEvent] = deque()
        self._publications: set[asyncio.Task[None]] = set()
        self._partial: asyncio.Task[None] | None = None
        self._observations: set[asyncio.Task[None]] = set()
        self._stopped = False
        self.failures = 0

    def committed(self, events: Sequence[DomainEvent]) -> None:
        """Queue ``events`` for publication (starting it when it can start); returns at once.
        After ``drain`` they are left to the sweeper."""
        if not events:
            return
        if self._observer is not None:
            task = self._start(self._observe(list(events)), self._observations.discard)
            self._observations.add(task)
        if self._stopped:
            return
        self._waiting.extend(events)
        self._start_publications()

    async def drain(self, seconds: float) -> None:
        """At shutdown: give the publications in flight, and those they start for events still
        waiting, up to ``seconds`` in all, then stop; what is left stays in the outbox for the
        sweeper, and no task of the relay is left running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (running := self._publications | self._observations) and (
            remaining := deadline - loop.time()
        ) > 0:
            await asyncio.wait(running, timeout=remaining)
        self._stopped = True
        self._waiting.clear()
        running = self._publications | self._observations
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _start_publications(self) -> None:
        while self._waiting and len(self._publications) < self._max_in_flight:
            full = len(self._waiting) >= PUBLISH_BATCH_LIMIT
            if not full and self._partial is not None:
                return
            size = min(len(self._waiting), PUBLISH_BATCH_LIMIT)
            batch = [self._waiting.popleft() for _ in range(size)]
            task = self._start(self._publish(batch), self._published)
            self._publications.add(task)
            if not full:
                self._partial = task

    async def _publish(self, batch: list[DomainEvent]) -> None:
        published = await publish_and_remove(
            self._publisher, self._outbox, batch, "event publication deferred to the sweeper"
        )
        self.failures += len(batch) - published

    def _published(self, task: asyncio.Task[None]) -> None:
        self._publications.discard(task)
        if task is self._partial:
            self._partial = None
        if not self._stopped:
            self._start_publications()

    async def _observe(self, events: list[DomainEvent]) -> None:
        assert self._observer is not None
        for event in events:
            await self._observer.observe(self._opener(event))

    @staticmethod
    def _start(
        work: Coroutine[Any, Any, None], done: Callable[[asyncio.Task[None]], None]
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        task.add_done_callback(done)
        return task
