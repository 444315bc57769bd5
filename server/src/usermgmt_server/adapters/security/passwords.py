"""Argon2id password hashing in a bounded thread pool, so hashing never blocks the event loop.

Hashes made by other systems (bcrypt, PBKDF2-SHA256; see ``legacy_hashes``) are verified by the
scheme their prefix names, in the same pool, until the next sign-in replaces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from usermgmt_server.adapters.security.legacy_hashes import DEFAULT_LEGACY_SCHEMES, LegacyScheme
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


# Bounds on the parameters of imported Argon2id hashes: each verification must stay affordable.
IMPORTED_ARGON2_MAX_MEMORY_KIB = 262_144
IMPORTED_ARGON2_MAX_TIME_COST = 16
IMPORTED_ARGON2_MAX_PARALLELISM = 16
_ARGON2_PREFIX = "$argon2"
_ARGON2ID_PREFIX = "$argon2id$"
# The PHC string argon2-cffi writes: version 19, unpadded base64 salt (8 bytes at least) and hash.
_ARGON2ID_FORMAT = re.compile(
    r"\$argon2id\$v=19\$m=[0-9]{1,10},t=[0-9]{1,10},p=[0-9]{1,3}\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{16,}"
)


class Argon2PasswordHasher:
    """``PasswordHasher`` using Argon2id, run in a dedicated pool with a bounded queue.

    At most ``max_pending`` jobs are running or queued at once; a caller that cannot get a slot
    within ``queue_timeout`` seconds gets ``ServerBusy``, so a login flood degrades into quick
    refusals instead of starving every other RPC. A slot is held until the job has really
    finished in its thread, even when the waiting caller was cancelled.

    A hash that is not Argon2 is verified by the ``legacy`` scheme that recognises its prefix; a
    hash no scheme knows (an account without a password) costs one dummy verification and never
    matches.
    """

    def __init__(
        self,
        parameters: Argon2Parameters,
        *,
        workers: int,
        max_pending: int,
        queue_timeout: float,
        legacy: Sequence[LegacyScheme] = DEFAULT_LEGACY_SCHEMES,
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
        self._legacy = tuple(legacy)
        self._closed = False

    async def hash(self, password: str) -> str:
        """An Argon2id hash string (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``) of ``password``."""
        return await self._run(self._argon2.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches; ``False`` also for a malformed or unknown hash."""
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

    def check_imported(self, password_hash: str) -> str | None:
        """Why a hash made by another system cannot be stored, or ``None`` when it can: it must
        be argon2id within bounded parameters or in a format of a ``legacy`` scheme."""
        if password_hash.startswith(_ARGON2ID_PREFIX):
            return _argon2id_problem(password_hash)
        scheme = self._scheme_for(password_hash)
        if scheme is None:
            names = ", ".join(["argon2id", *(scheme.name for scheme in self._legacy)])
            return f"is not in a supported format ({names})"
        return scheme.problem(password_hash)

    def close(self) -> None:
        """Stop the pool: queued jobs are cancelled, running ones finish in the background."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _verify_now(self, password_hash: str, password: str) -> bool:
        if password_hash.startswith(_ARGON2_PREFIX):
            return self._argon2_matches(password_hash, password)
        scheme = self._scheme_for(password_hash)
        if scheme is not None:
            return scheme.verify(password_hash, password)
        # No password (an invitation) or an unknown format: the same cost, and never a match.
        self._argon2_matches(self._dummy_hash, password)
        return False

    def _argon2_matches(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        # InvalidHashError and UnicodeEncodeError (non-ASCII hash text) are ValueErrors.
        except (VerificationError, ValueError):
            return False

    def _scheme_for(self, password_hash: str) -> LegacyScheme | None:
        return next((s for s in self._legacy if s.recognizes(password_hash)), None)

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


def _argon2id_problem(password_hash: str) -> str | None:
    if not _ARGON2ID_FORMAT.fullmatch(password_hash):
        return "is not a well-formed argon2id hash"
    try:
        parameters = argon2.extract_parameters(password_hash)
    except (InvalidHashError, ValueError):
        return "is not a well-formed argon2id hash"
    if (
        parameters.memory_cost > IMPORTED_ARGON2_MAX_MEMORY_KIB
        or parameters.time_cost > IMPORTED_ARGON2_MAX_TIME_COST
        or parameters.parallelism > IMPORTED_ARGON2_MAX_PARALLELISM
    ):
        return (
            f"has Argon2 parameters beyond m={IMPORTED_ARGON2_MAX_MEMORY_KIB}, "
            f"t={IMPORTED_ARGON2_MAX_TIME_COST}, p={IMPORTED_ARGON2_MAX_PARALLELISM}"
        )
    return None


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
    """Run ``callback`` on ``loop`` from a worker thread, unless the loop is already gone."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)
