"""Publishes a transaction's events right after it commits, without delaying the RPC."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from usermgmt_server.adapters.events.delivery import Publisher, publish_and_remove
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.ports import Outbox

logger = logging.getLogger(__name__)


class EventObserver(Protocol):
    """Sees every committed event (tests and local tooling)."""

    async def observe(self, event: DomainEvent) -> None:
        """Look at ``event``."""
        ...


class OutboxRelay:
    """``EventRelay``: publish each committed event in a background task, then remove it from
    the outbox. A failure leaves the event in the outbox for the sweeper; at most
    ``max_in_flight`` publications run at once so a slow SNS cannot pile up tasks."""

    def __init__(
        self,
        publisher: Publisher,
        outbox: Outbox,
        *,
        observer: EventObserver | None = None,
        opener: Callable[[DomainEvent], DomainEvent] = lambda event: event,
        max_in_flight: int = 64,
    ) -> None:
        self._opener = opener
        self._publisher = publisher
        self._outbox = outbox
        self._observer = observer
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures = 0

    def committed(self, events: Sequence[DomainEvent]) -> None:
        """Start publishing ``events``; returns at once."""
        for event in events:
            task = asyncio.create_task(self._deliver(event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self, seconds: float) -> None:
        """Wait up to ``seconds`` for publications in flight (at shutdown); the rest stays in
        the outbox for the sweeper."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=seconds)

    async def _deliver(self, event: DomainEvent) -> None:
        if self._observer is not None:
            await self._observer.observe(self._opener(event))
        async with self._slots:
            if not await publish_and_remove(
                self._publisher, self._outbox, [event], "event publication deferred to the sweeper"
            ):
                self.failures += 1
