"""Argon2id hashing: results, parameters, the worker pool and its bounded queue."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import argon2
import pytest

from usermgmt_server.adapters.security.passwords import Argon2Parameters, Argon2PasswordHasher
from usermgmt_server.domain.errors import ServerBusy

FAST = Argon2Parameters(time_cost=1, memory_cost_kib=1024)


@pytest.fixture
def hasher() -> Iterator[Argon2PasswordHasher]:
    hasher = Argon2PasswordHasher(FAST, workers=2, max_pending=8, queue_timeout=5)
    yield hasher
    hasher.close()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Makes hashes in the pool's threads wait until the event is set (set again at teardown)."""
    event = threading.Event()
    real_hash = argon2.PasswordHasher.hash

    def blocked_hash(self: argon2.PasswordHasher, password: str | bytes, **kwargs: object) -> str:
        if threading.current_thread().name.startswith("argon2"):
            event.wait(timeout=10)
        return real_hash(self, password)

    monkeypatch.setattr(argon2.PasswordHasher, "hash", blocked_hash)
    yield event
    event.set()


async def test_hash_then_verify_round_trip(hasher: Argon2PasswordHasher) -> None:
    password_hash = await hasher.hash("correct horse battery staple")
    assert password_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert await hasher.verify(password_hash, "correct horse battery staple") is True


async def test_each_hash_has_its_own_salt(hasher: Argon2PasswordHasher) -> None:
    assert await hasher.hash("same password") != await hasher.hash("same password")


async def test_wrong_password_is_false(hasher: Argon2PasswordHasher) -> None:
    password_hash = await hasher.hash("correct horse battery staple")
    assert await hasher.verify(password_hash, "Correct horse battery staple") is False


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "not a hash",
        "$2b$12$KIXQJmFzT2Y4c2n1fJ0b3eCkzq7Cq8p7wJm1Y2mXK0yQ1l8tBzUWa",
        "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$",
        "$argon2id$v=19$m=1024,t=1,p=1$!!!$!!!",
        "$argon2id$v=19$m=1024,t=1,p=1$é",
    ],
    ids=["empty", "text", "bcrypt", "truncated", "bad-base64", "non-ascii"],
)
async def test_malformed_or_foreign_hash_is_false(
    hasher: Argon2PasswordHasher, malformed: str
) -> None:
    assert await hasher.verify(malformed, "any password") is False


async def test_needs_rehash_when_parameters_change() -> None:
    old = Argon2PasswordHasher(FAST, workers=1, max_pending=1, queue_timeout=1)
    new = Argon2PasswordHasher(
        Argon2Parameters(time_cost=2, memory_cost_kib=1024),
        workers=1,
        max_pending=1,
        queue_timeout=1,
    )
    try:
        old_hash = await old.hash("password")
        assert new.needs_rehash(old_hash) is True
        assert old.needs_rehash(old_hash) is False
        assert new.needs_rehash(await new.hash("password")) is False
        assert await new.verify(old_hash, "password") is True
    finally:
        old.close()
        new.close()


def test_malformed_hash_needs_rehash(hasher: Argon2PasswordHasher) -> None:
    assert hasher.needs_rehash("not a hash") is True


async def test_owasp_defaults() -> None:
    defaults = Argon2Parameters()
    assert (defaults.memory_cost_kib, defaults.time_cost, defaults.parallelism) == (19456, 2, 1)
    assert (defaults.hash_len, defaults.salt_len) == (32, 16)
    hasher = Argon2PasswordHasher(defaults, workers=1, max_pending=2, queue_timeout=5)
    try:
        password_hash = await hasher.hash("password")
        assert password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert await hasher.verify(password_hash, "password") is True
    finally:
        hasher.close()


async def test_hashing_and_verifying_run_off_the_event_loop_thread(
    hasher: Argon2PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    real_hash, real_verify = argon2.PasswordHasher.hash, argon2.PasswordHasher.verify

    def recording_hash(self: argon2.PasswordHasher, password: str | bytes, **kwargs: object) -> str:
        threads.append(threading.current_thread())
        return real_hash(self, password)

    def recording_verify(self: argon2.PasswordHasher, hash: str, password: str) -> bool:
        threads.append(threading.current_thread())
        return real_verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "hash", recording_hash)
    monkeypatch.setattr(argon2.PasswordHasher, "verify", recording_verify)
    password_hash = await hasher.hash("password")
    await hasher.verify(password_hash, "password")
    await hasher.verify_dummy("password")

    assert len(threads) == 3
    loop_thread = threading.current_thread()
    assert all(thread is not loop_thread for thread in threads)
    assert all(thread.name.startswith("argon2") for thread in threads)


async def test_verify_dummy_spends_one_real_verification(
    hasher: Argon2PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_verify = argon2.PasswordHasher.verify

    def counting_verify(self: argon2.PasswordHasher, hash: str, password: str) -> bool:
        calls.append(hash)
        return real_verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting_verify)
    assert await hasher.verify_dummy("whatever the caller typed") is None
    assert len(calls) == 1
    assert calls[0].startswith("$argon2id$v=19$m=1024,t=1,p=1$")


async def test_a_flood_beyond_the_queue_gets_server_busy() -> None:
    slow = Argon2Parameters(time_cost=3, memory_cost_kib=65536)
    hasher = Argon2PasswordHasher(slow, workers=1, max_pending=1, queue_timeout=0.05)
    try:
        results = await asyncio.gather(
            *(hasher.hash(f"password {n}") for n in range(4)), return_exceptions=True
        )
    finally:
        hasher.close()
    busy = [r for r in results if isinstance(r, ServerBusy)]
    hashes = [r for r in results if isinstance(r, str)]
    assert busy and hashes
    assert len(busy) + len(hashes) == len(results)
    assert all(h.startswith("$argon2id$v=19$m=65536,t=3,p=1$") for h in hashes)


async def test_queue_admits_max_pending_jobs_then_refuses(gate: threading.Event) -> None:
    hasher = Argon2PasswordHasher(FAST, workers=1, max_pending=2, queue_timeout=0.05)
    try:
        running = asyncio.ensure_future(hasher.hash("one"))
        queued = asyncio.ensure_future(hasher.hash("two"))
        await asyncio.sleep(0)
        with pytest.raises(ServerBusy):
            await hasher.hash("three")
        gate.set()
        assert all(isinstance(h, str) for h in await asyncio.gather(running, queued))
        assert isinstance(await hasher.hash("four"), str)
    finally:
        hasher.close()


async def test_a_cancelled_caller_keeps_its_slot_until_the_thread_is_done(
    gate: threading.Event,
) -> None:
    hasher = Argon2PasswordHasher(FAST, workers=1, max_pending=1, queue_timeout=0.05)
    try:
        abandoned = asyncio.ensure_future(hasher.hash("abandoned"))
        await asyncio.sleep(0.01)
        abandoned.cancel()
        with pytest.raises(asyncio.CancelledError):
            await abandoned
        # The thread is still busy with the abandoned job, so the pool is still full.
        with pytest.raises(ServerBusy):
            await hasher.hash("next")
        gate.set()
        hasher_result = await asyncio.wait_for(_hash_when_free(hasher, "next"), timeout=5)
        assert hasher_result.startswith("$argon2id$")
    finally:
        hasher.close()


async def _hash_when_free(hasher: Argon2PasswordHasher, password: str) -> str:
    while True:
        try:
            return await hasher.hash(password)
        except ServerBusy:
            await asyncio.sleep(0.01)


async def test_closed_hasher_refuses_work() -> None:
    hasher = Argon2PasswordHasher(FAST, workers=1, max_pending=1, queue_timeout=1)
    hasher.close()
    with pytest.raises(RuntimeError):
        await hasher.hash("password")


@pytest.mark.parametrize("bad", [{"workers": 0}, {"max_pending": 0}, {"queue_timeout": -1}])
def test_pool_settings_are_checked(bad: dict[str, float]) -> None:
    settings: dict[str, float] = {"workers": 1, "max_pending": 1, "queue_timeout": 1, **bad}
    with pytest.raises(ValueError):
        Argon2PasswordHasher(FAST, **settings)  # type: ignore[arg-type]
