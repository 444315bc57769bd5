"""Per-address token buckets (api/rate_limit.py) on a fake clock: exhaustion, the retry-after
value, refill, independent keys and groups, the off switch, and the LRU bound on memory."""

from __future__ import annotations

import pytest

from usermgmt_server.api.rate_limit import RateLimiter

IP = "203.0.113.9"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def exhaust(limiter: RateLimiter, group: str = "login", ip: str = IP, calls: int = 1) -> None:
    for _ in range(calls):
        assert limiter.check(group, ip) is None


def test_allows_per_minute_calls_then_refuses(clock: FakeClock) -> None:
    limiter = RateLimiter(60, clock=clock)
    exhaust(limiter, calls=60)
    assert limiter.check("login", IP) == pytest.approx(1.0)


def test_retry_after_is_the_time_until_the_next_token(clock: FakeClock) -> None:
    limiter = RateLimiter(6, clock=clock)  # one token every 10 s
    exhaust(limiter, calls=6)
    assert limiter.check("login", IP) == pytest.approx(10.0)
    clock.advance(4)
    assert limiter.check("login", IP) == pytest.approx(6.0)
    clock.advance(5.5)
    assert limiter.check("login", IP) == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.check("login", IP) is None
    assert limiter.check("login", IP) == pytest.approx(10.0)


def test_refused_calls_take_no_token(clock: FakeClock) -> None:
    limiter = RateLimiter(6, clock=clock)
    exhaust(limiter, calls=6)
    for _ in range(100):
        assert limiter.check("login", IP) is not None
    clock.advance(10)
    assert limiter.check("login", IP) is None


def test_tokens_refill_at_per_minute_over_sixty(clock: FakeClock) -> None:
    limiter = RateLimiter(30, clock=clock)  # one token every 2 s
    exhaust(limiter, calls=30)
    clock.advance(20)
    exhaust(limiter, calls=10)
    assert limiter.check("login", IP) == pytest.approx(2.0)


def test_refill_stops_at_the_capacity(clock: FakeClock) -> None:
    limiter = RateLimiter(10, clock=clock)
    exhaust(limiter, calls=10)
    clock.advance(3600)
    exhaust(limiter, calls=10)
    assert limiter.check("login", IP) is not None


def test_burst_sets_the_capacity(clock: FakeClock) -> None:
    limiter = RateLimiter(60, burst=3, clock=clock)
    exhaust(limiter, calls=3)
    assert limiter.check("login", IP) == pytest.approx(1.0)
    clock.advance(60)
    exhaust(limiter, calls=3)
    assert limiter.check("login", IP) is not None


def test_addresses_have_separate_buckets(clock: FakeClock) -> None:
    limiter = RateLimiter(2, clock=clock)
    exhaust(limiter, ip="198.51.100.1", calls=2)
    assert limiter.check("login", "198.51.100.1") is not None
    exhaust(limiter, ip="198.51.100.2", calls=2)


def test_groups_have_separate_buckets(clock: FakeClock) -> None:
    limiter = RateLimiter(2, clock=clock)
    exhaust(limiter, group="login", calls=2)
    assert limiter.check("login", IP) is not None
    exhaust(limiter, group="register", calls=2)
    assert limiter.check("register", IP) is not None


def test_zero_per_minute_turns_limiting_off(clock: FakeClock) -> None:
    limiter = RateLimiter(0, clock=clock)
    assert not limiter.enabled
    exhaust(limiter, calls=10_000)
    assert len(limiter) == 0


def test_least_recently_used_keys_are_evicted_beyond_max_keys(clock: FakeClock) -> None:
    limiter = RateLimiter(1, max_keys=3, clock=clock)
    for ip in ("a", "b", "c"):
        exhaust(limiter, ip=ip)
    assert limiter.check("login", "a") is not None  # refused, but "a" is now the most recent
    exhaust(limiter, ip="d")  # evicts "b", the least recently used
    assert len(limiter) == 3
    assert limiter.check("login", "a") is not None
    assert limiter.check("login", "c") is not None
    assert limiter.check("login", "d") is not None
    exhaust(limiter, ip="b")  # forgotten, so it starts with a full bucket again


def test_memory_stays_bounded_under_many_addresses(clock: FakeClock) -> None:
    limiter = RateLimiter(10, max_keys=100, clock=clock)
    for n in range(10_000):
        limiter.check("login", f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 100


def test_a_clock_step_backwards_adds_no_tokens(clock: FakeClock) -> None:
    limiter = RateLimiter(6, clock=clock)
    exhaust(limiter, calls=6)
    clock.advance(-30)
    assert limiter.check("login", IP) == pytest.approx(10.0)
    clock.advance(30)  # back where it was: still no time has passed for the bucket
    assert limiter.check("login", IP) == pytest.approx(10.0)


def test_default_clock_is_monotonic() -> None:
    limiter = RateLimiter(60)
    assert limiter.check("login", IP) is None


@pytest.mark.parametrize(
    "arguments",
    [{"per_minute": -1}, {"per_minute": 10, "burst": 0}, {"per_minute": 10, "max_keys": 0}],
)
def test_bad_settings_are_refused(arguments: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(**arguments)
