"""Per-address rate limits: one token bucket for each (group, client address).

Each bucket holds up to ``burst`` tokens (``per_minute`` by default) and refills at
``per_minute / 60`` tokens a second; a call takes one token or is refused with the time until
the next token arrives (sent to the client as ``RetryInfo``).

The buckets live in the memory of one worker process, so the limit holds **per process**: with
N instances of W workers behind the load balancer, a client may make up to N * W times the
limit, and a restart forgets the counts. That is the intended trade-off: a shared counter in
DynamoDB would cost one conditional write (and its latency) on every limited call. The limit
is there to blunt floods from one address; guessing one account's password is stopped by the
per-account lockout, which is kept in DynamoDB and so holds across the fleet. Size
``per_minute`` with the fleet in mind.

Memory is bounded: beyond ``max_keys`` buckets the least recently used one is dropped (an
address that comes back after that starts with a full bucket). Every call is O(1). The limiter
is not thread-safe: use one per event loop, as the gRPC interceptor does.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

_SECONDS_PER_MINUTE = 60.0


class RateLimiter:
    """Token buckets keyed by (group, ip); ``per_minute == 0`` turns limiting off."""

    __slots__ = ("_buckets", "_capacity", "_clock", "_max_keys", "_rate")

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int | None = None,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 0:
            raise ValueError("per_minute must not be negative (0 turns rate limiting off)")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._rate = per_minute / _SECONDS_PER_MINUTE
        self._capacity = float(per_minute if burst is None else burst)
        self._max_keys = max_keys
        self._clock = clock
        # (group, ip) -> (tokens left, time of the last update); least recently used first.
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """Whether calls are limited at all."""
        return self._rate > 0

    def check(self, group: str, ip: str) -> float | None:
        """Take a token for ``ip`` in ``group``: ``None`` if the call may go ahead, else the
        number of seconds until a token is available."""
        if self._rate <= 0:
            return None
        now = self._clock()
        key = (group, ip)
        bucket = self._buckets.get(key)
        if bucket is None:
            tokens = self._capacity
        else:
            left, updated = bucket
            now = max(now, updated)  # a clock that steps back must not mint tokens later
            tokens = min(self._capacity, left + (now - updated) * self._rate)
            self._buckets.move_to_end(key)
        if tokens >= 1.0:
            tokens -= 1.0
            retry_after = None
        else:
            retry_after = (1.0 - tokens) / self._rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return retry_after

    def __len__(self) -> int:
        """The number of buckets held."""
        return len(self._buckets)
