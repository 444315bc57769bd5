"""System time and id generation, plus a clock that tests can move by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta


class SystemClock:
    """The real time, always as an aware UTC datetime."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that stands still until told to move; for tests that depend on time.

    ``ManualClock()`` starts at a fixed instant so results are reproducible.
    """

    DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)

    def __init__(self, start: datetime | None = None) -> None:
        self._now = self._checked(start or self.DEFAULT_START)

    def now(self) -> datetime:
        """The time the clock was last set to."""
        return self._now

    def advance(self, delta: timedelta | None = None, *, seconds: float = 0) -> datetime:
        """Move forwards (or backwards, with a negative delta) and return the new time."""
        self._now += (delta or timedelta()) + timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (an aware datetime)."""
        self._now = self._checked(when)

    @staticmethod
    def _checked(when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        return when.astimezone(UTC)


class RandomUserIds:
    """Random account ids: UUID4 strings (122 random bits, URL-safe, no ordering leaks)."""

    def new_user_id(self) -> str:
        """A fresh id such as ``'0b8e…-…'``."""
        return str(uuid.uuid4())
