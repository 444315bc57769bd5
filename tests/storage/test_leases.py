"""The ``LeaseStore`` contract: one holder at a time, renewal by the holder, takeover after
expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.storage.backends import StorageBackend
from tests.storage.factories import unique
from usermgmt_server.domain.ports import LeaseStore

TERM = timedelta(seconds=30)


async def test_of_concurrent_claims_exactly_one_wins(
    leases: LeaseStore, backend: StorageBackend
) -> None:
    name, now = unique("lease"), backend.clock.now()
    owners = [unique("owner") for _ in range(20)]

    results = await asyncio.gather(
        *(leases.acquire(name, owner, until=now + TERM, now=now) for owner in owners)
    )

    assert results.count(True) == 1
    winner = owners[results.index(True)]
    assert (await backend.audit()).leases == {name: winner}


async def test_the_holder_renews_and_others_wait_until_it_runs_out(
    leases: LeaseStore, backend: StorageBackend
) -> None:
    name, now = unique("lease"), backend.clock.now()
    assert await leases.acquire(name, "a", until=now + TERM, now=now)
    assert not await leases.acquire(name, "b", until=now + TERM, now=now)

    renewed = now + TERM * 2
    later = now + TERM + timedelta(seconds=1)
    assert await leases.acquire(name, "a", until=renewed, now=now + timedelta(seconds=10))
    # Past the first term but within the renewed one.
    assert not await leases.acquire(name, "b", until=later + TERM, now=later)
    assert await leases.acquire(unique("other-lease"), "b", until=later + TERM, now=later)

    expired = renewed + timedelta(microseconds=1)
    assert await leases.acquire(name, "b", until=expired + TERM, now=expired)
    assert not await leases.acquire(name, "a", until=expired + TERM, now=expired)
    assert (await backend.audit()).leases[name] == "b"
