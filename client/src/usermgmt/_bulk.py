"""Sending import rows in batches: several ImportUsers calls at once, a tally with line numbers."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from usermgmt._errors import DeadlineExceeded, Unavailable
from usermgmt._rows import SourceRow
from usermgmt._users import UsersClient
from usermgmt.v1 import user_service_pb2

#: Reason given to rows that could not be read from their source (they are never sent).
UNREADABLE_ROW = "UNREADABLE_ROW"
_OUTCOMES = {
    user_service_pb2.IMPORT_OUTCOME_CREATED: "created",
    user_service_pb2.IMPORT_OUTCOME_EXISTS: "exists",
    user_service_pb2.IMPORT_OUTCOME_INVALID: "invalid",
    user_service_pb2.IMPORT_OUTCOME_FAILED: "failed",
}
# Attempts of one batch when the service is momentarily unavailable (re-sending is safe).
_BATCH_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Problem:
    """A row that was not imported: where it was, what became of it (``invalid``, ``failed``)
    and why."""

    line: int
    outcome: str
    reason: str
    message: str


@dataclass
class ImportTally:
    """How many rows had each outcome, and the rows that were not imported, by line."""

    created: int = 0
    exists: int = 0
    invalid: int = 0
    failed: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Every row counted."""
        return self.created + self.exists + self.invalid + self.failed

    def add(self, line: int, outcome: str, reason: str = "", message: str = "") -> None:
        """Count one row (``created``, ``exists``, ``invalid`` or ``failed``)."""
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome in ("invalid", "failed"):
            self.problems.append(Problem(line, outcome, reason, message))

    def add_result(self, line: int, result: user_service_pb2.ImportUserResult) -> None:
        """Count the server's result for the row of ``line``."""
        self.add(line, _OUTCOMES.get(result.outcome, "failed"), result.reason, result.message)


async def import_rows(
    users: UsersClient,
    rows: Iterator[SourceRow],
    *,
    batch_size: int,
    parallel: int,
    timeout: float | None,
    position: Callable[[], int] = lambda: 0,
    on_batch: Callable[[int, int], None] = lambda rows, position: None,
) -> ImportTally:
    """Send ``rows`` in ImportUsers calls of ``batch_size`` rows, ``parallel`` calls at once.

    ``rows`` is read in a worker thread (files and S3 objects block). Rows that could not be
    read count as invalid (``UNREADABLE_ROW``). A batch the service could not take
    (UNAVAILABLE, deadline exceeded) is sent again a few times; other errors end the import.
    When a batch is done, ``on_batch`` is told how many rows it held and what ``position``
    (say, bytes read from the source) said once the batch had been read.
    """
    tally = ImportTally()
    running: set[asyncio.Task[None]] = set()
    try:
        while batch := await asyncio.to_thread(_take, rows, batch_size):
            for row in batch:
                if row.user is None:
                    tally.add(row.line, "invalid", UNREADABLE_ROW, row.error)
            readable = [row for row in batch if row.user is not None]
            done = functools.partial(on_batch, len(batch), position())
            if not readable:
                done()
                continue
            while len(running) >= parallel:
                finished, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    task.result()
            running.add(asyncio.create_task(_send(users, readable, tally, timeout, done)))
        for task in asyncio.as_completed(running):
            await task
    finally:
        for task in running:
            task.cancel()
    return tally


async def _send(
    users: UsersClient,
    rows: list[SourceRow],
    tally: ImportTally,
    timeout: float | None,
    done: Callable[[], None],
) -> None:
    batch = [row.user for row in rows if row.user is not None]
    for attempt in range(_BATCH_ATTEMPTS):
        try:
            response = await users.import_users(batch, timeout=timeout)
            break
        except (Unavailable, DeadlineExceeded):
            if attempt == _BATCH_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.5 * 2**attempt)
    for result in response.results:
        tally.add_result(rows[result.index].line, result)
    done()


def _take(rows: Iterator[SourceRow], count: int) -> list[SourceRow]:
    return list(itertools.islice(rows, count))
