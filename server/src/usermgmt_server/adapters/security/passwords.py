"""Argon2id password hashing in a bounded thread pool, so hashing never blocks the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import argon2
from argon2.exceptions import VerificationError

from usermgmt_server.domain.errors import ServerBusy

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """Argon2id cost settings; the defaults are OWASP's (m=19 MiB, t=2, p=1)."""

    time_cost: int = 2
    memory_cost_kib: int = 19456
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16


class Argon2PasswordHasher:
    """``PasswordHasher`` using Argon2id, run in a dedicated pool with a bounded queue.

    At most ``max_pending`` jobs are running or queued at once; a caller that cannot get a slot
    within ``queue_timeout`` seconds gets ``ServerBusy``, so a login flood degrades into quick
    refusals instead of starving every other RPC. A slot is held until the job has really
    finished in its thread, even when the waiting caller was cancelled.
    """

    def __init__(
        self,
        parameters: Argon2Parameters,
        *,
        workers: int,
        max_pending: int,
        queue_timeout: float,
    ) -> None:
        if workers < 1 or max_pending < 1:
            raise ValueError("workers and max_pending must be at least 1")
        if queue_timeout < 0:
            raise ValueError("queue_timeout must not be negative")
        self.parameters = parameters
        self._argon2 = argon2.PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_cost_kib,
            parallelism=parameters.parallelism,
            hash_len=parameters.hash_len,
            salt_len=parameters.salt_len,
            type=argon2.Type.ID,
        )
        # Made once so that logins of unknown accounts cost exactly one real verification.
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(24))
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._slots = asyncio.Semaphore(max_pending)
        self._queue_timeout = queue_timeout
        self._closed = False

    async def hash(self, password: str) -> str:
        """An Argon2id hash string (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``) of ``password``."""
        return await self._run(self._argon2.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches; ``False`` also for a malformed or non-Argon2 hash."""
        return await self._run(self._verify_now, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend one verification against a hash no password matches."""
        await self._run(self._verify_now, self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters (a malformed hash counts as such)."""
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except ValueError:  # InvalidHashError included
            return True

    def close(self) -> None:
        """Stop the pool: queued jobs are cancelled, running ones finish in the background."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _verify_now(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        # InvalidHashError and UnicodeEncodeError (non-ASCII hash text) are ValueErrors.
        except (VerificationError, ValueError):
            return False

    async def _run(self, job: Callable[..., T], *args: str) -> T:
        if self._closed:
            raise RuntimeError("the password hasher is closed")
        try:
            async with asyncio.timeout(self._queue_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise ServerBusy("too many password checks are waiting; retry later") from None
        loop = asyncio.get_running_loop()
        try:
            future = self._executor.submit(job, *args)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: _call_soon(loop, self._slots.release))
        return await asyncio.wrap_future(future)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
    """Run ``callback`` on ``loop`` from a worker thread, unless the loop is already gone."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)
