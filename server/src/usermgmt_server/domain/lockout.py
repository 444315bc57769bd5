"""Progressive back-off and hard lock after failed sign-ins (the arithmetic only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """After ``threshold`` failures each further failure doubles the wait, up to ``max_delay``;
    ``hard_limit`` failures lock the account until a password reset or an administrator's
    unlock. Counters of quiet accounts are forgotten after ``memory``."""

    threshold: int = 5
    base_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=15)
    hard_limit: int = 100
    memory: timedelta = timedelta(days=1)

    def delay_after(self, failures: int) -> timedelta | None:
        """How long sign-in stays refused after the ``failures``-th failure (None: not at all)."""
        if failures < self.threshold:
            return None
        # Float seconds: doubling a timedelta overflows long before the cap would apply.
        seconds = self.base_delay.total_seconds() * 2.0 ** min(failures - self.threshold, 1000)
        return min(timedelta(seconds=min(seconds, self.max_delay.total_seconds())), self.max_delay)

    def hard_locked_after(self, failures: int) -> bool:
        """Whether ``failures`` failures lock the account for good."""
        return failures >= self.hard_limit
