"""Run N worker processes, restart the ones that die, stop them all on SIGTERM or SIGINT.

The supervisor serves nothing itself and never imports gRPC: each worker is a fresh process
(the same command re-executed with a worker index), so no gRPC state crosses a fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from usermgmt_server.workers.link import READY, SUPERVISOR_FD_FLAG, WORKER_INDEX_FLAG

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When to restart a worker that died, and when to give up.

    A worker that exits without being asked is restarted after a back-off that doubles with
    each of its recent crashes (``initial_backoff`` up to ``max_backoff``). More than
    ``crash_limit`` crashes of all workers together within ``window`` seconds is a crash
    loop: the supervisor stops every worker and exits non-zero instead of spinning.
    """

    initial_backoff: float = 0.5
    max_backoff: float = 10.0
    crash_limit: int = 5
    window: float = 60.0

    def backoff(self, recent_crashes: int) -> float:
        """Seconds to wait before restarting a worker with ``recent_crashes`` (at least 1)."""
        return min(self.max_backoff, self.initial_backoff * 2 ** max(0, recent_crashes - 1))


@dataclass(slots=True)
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass(slots=True)
class _CrashLog:
    policy: RestartPolicy
    clock: Callable[[], float]
    times: deque[tuple[float, int]] = field(default_factory=deque)

    def record(self, index: int) -> tuple[int, int]:
        """Note a crash of worker ``index``; returns (its recent crashes, everyone's)."""
        now = self.clock()
        self.times.append((now, index))
        while self.times and self.times[0][0] < now - self.policy.window:
            self.times.popleft()
        return sum(1 for _, i in self.times if i == index), len(self.times)


class Supervisor:
    """Keeps ``workers`` copies of ``command`` running until told to stop.

    Each worker gets ``--worker-index I --supervisor-fd FD`` appended to ``command``; it
    writes ``ready`` on that descriptor once it serves. ``on_ready`` runs once, when every
    worker has served for the first time. SIGTERM or SIGINT forwards SIGTERM to every worker;
    workers still running ``stop_timeout`` seconds later are killed.
    """

    def __init__(
        self,
        command: Sequence[str],
        workers: int,
        *,
        stop_timeout: float,
        on_ready: Callable[[], None] = lambda: None,
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._command = list(command)
        self._count = workers
        self._stop_timeout = stop_timeout
        self._on_ready = on_ready
        self._policy = policy or RestartPolicy()
        self._crashes = _CrashLog(self._policy, clock)
        self._current: dict[int, _Worker] = {}
        self._stopping = asyncio.Event()
        self._failure: str | None = None
        self._ready_once: set[int] = set()

    async def run(self) -> int:
        """Supervise until stopped; 0 after a clean stop, 1 after a failure."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._request_stop, signum)
        slots = [asyncio.create_task(self._keep_running(i)) for i in range(self._count)]
        for slot in slots:
            slot.add_done_callback(self._slot_done)
        await self._stopping.wait()
        self._terminate_all()
        clean = await self._wait_for_exit(slots)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if self._failure is not None:
            logger.error("supervisor gives up: %s", self._failure)
            return 1
        logger.info("every worker stopped", extra={"clean": clean})
        return 0 if clean else 1

    def _request_stop(self, signum: int) -> None:
        if not self._stopping.is_set():
            logger.info("stopping workers", extra={"signal": signal.Signals(signum).name})
        self._stopping.set()

    def _fail(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
        self._stopping.set()

    def _slot_done(self, slot: asyncio.Task[None]) -> None:
        error = None if slot.cancelled() else slot.exception()
        if error is not None:
            self._fail(f"supervising a worker failed: {error!r}")

    async def _keep_running(self, index: int) -> None:
        restarting = False
        while not self._stopping.is_set():
            worker = await self._spawn(index)
            self._current[index] = worker
            if self._stopping.is_set():
                self._terminate(worker)
            served = await self._until_ready(worker)
            if served:
                self._note_ready(worker, restarting)
            code = await worker.process.wait()
            worker.writer.close()
            if self._stopping.is_set():
                return
            if not served and not restarting:
                # A first start that fails (port taken, settings the worker refuses) would
                # fail the same way again: report it instead of retrying.
                self._fail(f"worker {index} exited with code {code} before serving")
                return
            own, everyone = self._crashes.record(index)
            if everyone > self._policy.crash_limit:
                self._fail(
                    f"{everyone} worker crashes within {self._policy.window:g} s "
                    f"(last: worker {index}, exit code {code})"
                )
                return
            delay = self._policy.backoff(own)
            logger.warning(
                "worker exited unexpectedly; restarting",
                extra={"worker": index, "worker_pid": worker.pid, "code": code, "delay_s": delay},
            )
            restarting = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _spawn(self, index: int) -> _Worker:
        own_end, worker_end = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                WORKER_INDEX_FLAG,
                str(index),
                SUPERVISOR_FD_FLAG,
                str(worker_end.fileno()),
                pass_fds=(worker_end.fileno(),),
            )
        except BaseException:
            own_end.close()
            raise
        finally:
            worker_end.close()
        reader, writer = await asyncio.open_connection(sock=own_end)
        logger.info("worker started", extra={"worker": index, "worker_pid": process.pid})
        return _Worker(index, process, reader, writer)

    async def _until_ready(self, worker: _Worker) -> bool:
        with contextlib.suppress(ConnectionError):
            return await worker.reader.readline() == READY
        return False

    def _note_ready(self, worker: _Worker, restarted: bool) -> None:
        logger.info(
            "worker restarted and serving" if restarted else "worker serving",
            extra={"worker": worker.index, "worker_pid": worker.pid},
        )
        if worker.index in self._ready_once:
            return
        self._ready_once.add(worker.index)
        if len(self._ready_once) == self._count and not self._stopping.is_set():
            self._on_ready()

    def _terminate_all(self) -> None:
        for worker in self._current.values():
            self._terminate(worker)

    @staticmethod
    def _terminate(worker: _Worker) -> None:
        if worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)

    async def _wait_for_exit(self, slots: list[asyncio.Task[None]]) -> bool:
        """Wait for every worker; kill what is left after the stop timeout. True if all
        exited with status 0."""
        _, pending = await asyncio.wait(slots, timeout=self._stop_timeout)
        if pending:
            for worker in self._current.values():
                if worker.process.returncode is None:
                    logger.error(
                        "worker did not stop in time; killing it",
                        extra={"worker": worker.index, "worker_pid": worker.pid},
                    )
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()
            await asyncio.wait(pending)
        for worker in self._current.values():
            await worker.process.wait()
            worker.writer.close()
        return not pending and all(w.process.returncode == 0 for w in self._current.values())
