"""The load generator: a pool of client processes, each an event loop running several streams
(one channel, hence one connection, each) that call one RPC back to back or at a set pace.

The processes are started once and reused for every phase. A phase starts when every process
has connected and warmed up; the caller samples server CPU at that moment (``on_start``), so
process start-up and connection set-up never count as work of the measured calls.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import grpc

from tests.bench.calls import Identity, make_call

CALL_TIMEOUT = 10.0
READY_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What one client process does in a phase.

    ``identities`` are handed out to its streams in turn; ``rate`` (calls per second per
    stream) paces the calls, and latency then counts from the moment a call was due, so a slow
    answer that delays the next call is not hidden; ``None`` calls back to back. Authenticate
    uses a wrong password if ``wrong_password``; a call ending with status ``expect`` counts
    as answered, not as an error. ``rpc`` GetItem reads the identities' user items straight
    from the emulator at ``target`` (an endpoint URL) in ``table``, with no server between.
    """

    rpc: str
    target: str
    streams: int
    duration: float
    identities: tuple[Identity, ...]
    admin: Identity
    rate: float | None = None
    warmup: int = 2
    wrong_password: bool = False
    expect: str | None = None
    table: str = ""


@dataclass(slots=True)
class LoadResult:
    """What one or more client processes saw of one RPC in a phase."""

    rpc: str
    calls: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    started: float = float("inf")
    finished: float = 0.0
    client_cpu_seconds: float = 0.0

    @property
    def wall_seconds(self) -> float:
        """From the first call's start to the last call's end, over all processes."""
        return max(self.finished - self.started, 1e-9)

    def merge(self, other: LoadResult) -> None:
        """Add another process's figures for the same RPC."""
        self.calls += other.calls
        self.errors.update(other.errors)
        self.latencies += other.latencies
        self.started = min(self.started, other.started)
        self.finished = max(self.finished, other.finished)
        self.client_cpu_seconds += other.client_cpu_seconds


class LoadError(RuntimeError):
    """A client process failed; the message holds its traceback."""


class LoadPool:
    """``processes`` client processes, started once (spawned: no inherited gRPC state)."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._go = context.Event()
        self._replies: Any = context.Queue()
        self._inboxes: list[Any] = [context.Queue() for _ in range(processes)]
        self._processes = [
            context.Process(
                target=_serve, args=(index, inbox, self._replies, self._go), daemon=True
            )
            for index, inbox in enumerate(self._inboxes)
        ]
        for process in self._processes:
            process.start()

    @property
    def pids(self) -> list[int]:
        """The process ids of the client processes."""
        return [process.pid for process in self._processes if process.pid is not None]

    @property
    def size(self) -> int:
        """How many client processes there are."""
        return len(self._processes)

    def run(
        self, specs: Sequence[LoadSpec | None], on_start: Callable[[], object] = lambda: None
    ) -> dict[str, LoadResult]:
        """Run one phase: ``specs[i]`` for process i (``None``: it sits out); returns the
        merged result per RPC. ``on_start`` is called once all are ready, just before the go."""
        if len(specs) > self.size:
            raise ValueError(f"{len(specs)} specs for {self.size} processes")
        self._go.clear()
        active = [(i, spec) for i, spec in enumerate(specs) if spec is not None]
        for index, spec in active:
            self._inboxes[index].put(spec)
        for _ in active:
            self._reply("ready")
        on_start()
        self._go.set()
        merged: dict[str, LoadResult] = {}
        for _ in active:
            result = self._reply("done")
            merged.setdefault(result.rpc, LoadResult(result.rpc)).merge(result)
        return merged

    def close(self) -> None:
        """Stop the client processes."""
        for inbox in self._inboxes:
            inbox.put(None)
        for process in self._processes:
            process.join(10)
            if process.is_alive():
                process.kill()

    def _reply(self, expected: str) -> Any:
        deadline = time.monotonic() + READY_TIMEOUT + CALL_TIMEOUT
        while True:
            try:
                kind, payload = self._replies.get(timeout=1.0)
                break
            except queue.Empty:
                dead = [p.pid for p in self._processes if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    raise LoadError(f"no answer from the client processes (dead: {dead})") from None
        if kind == "error":
            raise LoadError(payload)
        if kind != expected:
            raise LoadError(f"client process said {kind!r}, expected {expected!r}")
        return payload


def _serve(index: int, inbox: Any, replies: Any, go: Any) -> None:
    while (spec := inbox.get()) is not None:
        try:
            result = asyncio.run(_phase(spec, replies, go))
        except BaseException:
            replies.put(("error", f"client process {index}:\n{traceback.format_exc()}"))
            continue
        replies.put(("done", result))


async def _phase(spec: LoadSpec, replies: Any, go: Any) -> LoadResult:
    async with AsyncExitStack() as stack:
        calls = await _calls(spec, stack)
        for call in calls:
            for _ in range(spec.warmup):
                await _answered(call, spec.expect)
        replies.put(("ready", None))
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        result = LoadResult(spec.rpc)
        cpu_before = time.process_time()
        result.started = time.monotonic()
        deadline = result.started + spec.duration
        await asyncio.gather(
            *(
                _stream(call, result, deadline, spec.rate, number / spec.streams, spec.expect)
                for number, call in enumerate(calls)
            )
        )
        result.finished = time.monotonic()
        result.client_cpu_seconds = time.process_time() - cpu_before
        return result


async def _calls(spec: LoadSpec, stack: AsyncExitStack) -> list[Callable[[], Any]]:
    """One call function per stream, on connections that close with ``stack``."""
    identities = [spec.identities[n % len(spec.identities)] for n in range(spec.streams)]
    if spec.rpc == "GetItem":
        from tests.e2e.harness import moto_settings
        from usermgmt_server.adapters.dynamodb import codec
        from usermgmt_server.adapters.dynamodb.clients import open_aws_clients

        clients = await stack.enter_async_context(open_aws_clients(moto_settings(spec.target)))

        def get_item(user_id: str) -> Callable[[], Any]:
            key = codec.user_key(user_id)
            return lambda: clients.dynamodb.get_item(
                TableName=spec.table, Key=key, ConsistentRead=True
            )

        return [get_item(identity.user_id) for identity in identities]
    # Separate subchannel pools give each stream its own connection, which SO_REUSEPORT then
    # places on some worker process (it balances connections, not calls).
    options = [("grpc.use_local_subchannel_pool", 1)]
    calls = []
    for identity in identities:
        channel = grpc.aio.insecure_channel(spec.target, options=options)
        stack.push_async_callback(channel.close)
        calls.append(
            make_call(
                spec.rpc,
                channel,
                identity,
                spec.admin,
                CALL_TIMEOUT,
                wrong_password=spec.wrong_password,
            )
        )
    return calls


async def _answered(call: Callable[[], Any], expect: str | None) -> None:
    """Make one call; an error other than ``expect`` is raised."""
    try:
        await call()
    except grpc.aio.AioRpcError as error:
        if error.code().name != expect:
            raise


async def _stream(
    call: Callable[[], Any],
    result: LoadResult,
    deadline: float,
    rate: float | None,
    phase: float,
    expect: str | None,
) -> None:
    interval = 1.0 / rate if rate else 0.0
    # Paced streams start spread over one interval, so their calls do not arrive in bursts.
    due = time.monotonic() + phase * interval
    while True:
        if rate:
            if due >= deadline:
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            started = due
            due += interval
        else:
            started = time.monotonic()
            if started >= deadline:
                return
        try:
            await call()
        except grpc.aio.AioRpcError as error:
            if error.code().name != expect:
                result.errors[error.code().name] += 1
                continue
        result.calls += 1
        result.latencies.append(time.monotonic() - started)
