"""Publishing outbox events and removing them: the one step the relay and the sweeper share."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.ports import Outbox

logger = logging.getLogger(__name__)

# Entries of one SNS PublishBatch call.
PUBLISH_BATCH_LIMIT = 10


class Publisher(Protocol):
    """Something that publishes events, up to ``PUBLISH_BATCH_LIMIT`` in one call."""

    async def publish(self, events: Sequence[DomainEvent]) -> Mapping[str, str]:
        """Publish ``events`` at once; the events that were not published, as event id ->
        error code (empty when all were). Raises when the call as a whole failed."""
        ...


async def publish_and_remove(
    publisher: Publisher, outbox: Outbox, events: Sequence[DomainEvent], failure_message: str
) -> int:
    """Publish ``events`` ``PUBLISH_BATCH_LIMIT`` at a time, stopping at the first batch that
    is not wholly published, then remove the published ones from the outbox.

    What was not published and removed stays in the outbox (a failure is logged as
    ``failure_message`` with event ids and error codes, never bodies). Returns how many events
    were published and removed: ``len(events)`` when nothing failed.
    """
    published: list[DomainEvent] = []
    for start in range(0, len(events), PUBLISH_BATCH_LIMIT):
        batch = events[start : start + PUBLISH_BATCH_LIMIT]
        try:
            failed = await publisher.publish(batch)
        except Exception as error:
            _warn(failure_message, {event.event_id: type(error).__name__ for event in batch})
            break
        published += [event for event in batch if event.event_id not in failed]
        if failed:
            _warn(failure_message, failed)
            break
    if not published:
        return 0
    try:
        await outbox.remove(published)
    except Exception as error:
        _warn(failure_message, {event.event_id: type(error).__name__ for event in published})
        return 0
    return len(published)


def _warn(message: str, failed: Mapping[str, str]) -> None:
    logger.warning(
        message,
        extra={"event_ids": sorted(failed), "errors": sorted(set(failed.values()))},
    )


__all__ = ["PUBLISH_BATCH_LIMIT", "Publisher", "publish_and_remove"]
