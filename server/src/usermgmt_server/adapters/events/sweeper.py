"""Publishes whatever the relay left in the outbox (SNS down, a crash after commit)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from usermgmt_server.adapters.events.delivery import Publisher, publish_and_remove
from usermgmt_server.domain.ports import Clock, LeaseStore, Outbox

logger = logging.getLogger(__name__)

LEASE_NAME = "outbox-sweeper"


class OutboxSweeper:
    """Every ``interval`` the instance holding the lease publishes up to ``batch`` events older
    than ``grace`` (younger ones are still in the relay's hands), ten per SNS call, and removes
    them, 25 per DynamoDB call; a failure ends the pass and leaves the rest for the next one.
    It also logs the backlog's size and age. Safe with many instances: only the lease holder
    sweeps."""

    def __init__(
        self,
        outbox: Outbox,
        publisher: Publisher,
        leases: LeaseStore,
        clock: Clock,
        *,
        interval: timedelta,
        grace: timedelta,
        batch: int = 100,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._leases = leases
        self._clock = clock
        self._interval = interval
        self._grace = grace
        self._batch = batch
        self._owner = uuid.uuid4().hex
        self.published = 0
        self.failures = 0

    async def run(self) -> None:
        """Sweep forever (cancel the task to stop); storage errors are logged and retried."""
        while True:
            try:
                await self.sweep_once()
            except Exception:
                logger.exception("outbox sweep failed")
            await asyncio.sleep(self._interval.total_seconds())

    async def sweep_once(self) -> int:
        """One pass if this instance holds the lease; returns the number of events published."""
        now = self._clock.now()
        lease_until = now + self._interval * 3
        if not await self._leases.acquire(LEASE_NAME, self._owner, until=lease_until, now=now):
            return 0
        backlog = await self._outbox.backlog()
        age = (now - backlog.oldest).total_seconds() if backlog.oldest else 0.0
        logger.info(
            "outbox backlog", extra={"outbox_backlog": backlog.count, "outbox_age_s": round(age, 3)}
        )
        pending = await self._outbox.pending(written_before=now - self._grace, limit=self._batch)
        published = await publish_and_remove(
            self._publisher, self._outbox, pending, "outbox publication failed; will retry"
        )
        if published < len(pending):
            self.failures += 1
        self.published += published
        return published
