"""One benchmark run: every phase in order, each figure beside the bound it is compared with.

Phases (one emulator and table for the whole run):

1. One worker process: each RPC alone (GetUser, ListUsers, UpdateUser, Authenticate,
   Register). After GetUser, GetUser again beside its parts, all paced at one rate: a bare
   grpc.aio echo server's CPU per call and aioboto3's CPU per GetItem. Just before and after
   Authenticate, the Argon2 verify rate.
2. Login load on the same worker: Authenticate keeping the hashing threads busy, GetUser and
   GetJwks paced beside it; then the token verification costs.
3. Workers: GetJwks (no storage, no hashing, so neither the emulator nor Argon2 limits it) at
   saturation against one worker process confined to one core, the same free to use every
   core, and two worker processes.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from tests.bench import h2load, procstat, profile
from tests.bench.calls import Identity
from tests.bench.echo import BANNER as ECHO_BANNER
from tests.bench.loadgen import LoadPool, LoadResult, LoadSpec
from tests.bench.stack import Server, Stack
from usermgmt.v1 import auth_service_pb2, auth_service_pb2_grpc

REPOSITORY = Path(__file__).resolve().parents[2]
RPCS = ("GetUser", "ListUsers", "UpdateUser", "Authenticate", "Register")
JWKS_METHOD = "/usermgmt.v1.AuthService/GetJwks"
# RPCs whose every call hashes a password.
HASHING_RPCS = ("Authenticate", "Register")


@dataclass(frozen=True, slots=True)
class BenchSettings:
    """How long and how hard each phase runs.

    ``streams`` concurrent calls per client process drive each RPC alone; ``login_streams``
    Authenticate calls in flight keep the hashing threads saturated (more than the threads,
    fewer than the queue bound); ``probe_streams`` x ``probe_rate`` GetUser and as many
    GetJwks calls per second are timed meanwhile. ``hash_workers`` hashing threads per worker
    process (the Argon2 bound uses as many). ``load_tool`` drives the workers phase: h2load,
    python, or auto (h2load when installed). ``profile`` names RPCs whose phase is run once
    more under py-spy.
    """

    duration: float = 8.0
    bound_duration: float = 4.0
    processes: int = 2
    streams: int = 4
    users: int = 32
    login_streams: int = 8
    probe_streams: int = 2
    probe_rate: float = 10.0
    hash_workers: int = 1
    scaling_connections: int = 16
    scaling_streams: int = 4
    load_tool: str = "auto"
    profile: tuple[str, ...] = ()


class Bench:
    """Runs the phases and collects every figure into one JSON-ready dictionary."""

    def __init__(self, settings: BenchSettings, out_dir: Path) -> None:
        """Logs go to ``out_dir``/logs, profiles to ``out_dir``."""
        if settings.processes < 2:
            raise ValueError("at least 2 client processes: login load and GetUser run apart")
        if settings.users < settings.processes * settings.streams:
            raise ValueError("at least one account per stream: UpdateUser streams must not share")
        unknown = set(settings.profile) - set(RPCS)
        if unknown:
            raise ValueError(f"cannot profile {sorted(unknown)}: not one of {RPCS}")
        self.settings = settings
        self.out_dir = out_dir
        (out_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.stack = Stack(out_dir / "logs", hash_workers=settings.hash_workers)
        self.pool: LoadPool | None = None
        self.accounts: list[Identity] = []
        self.admin: Identity | None = None

    def run(self) -> dict[str, Any]:
        """Run every phase; the results as plain data."""
        started = time.time()
        load_before = os.getloadavg()
        self.stack.start()
        try:
            self.accounts, self.admin = self.stack.seed(self.settings.users)
            # Two more than the load phases use: the login-load phase probes with three calls.
            self.pool = LoadPool(self.settings.processes + 2)
            try:
                results = self._phases()
            finally:
                self.pool.close()
        finally:
            self.stack.stop()
        assert self.stack.settings is not None
        server = self.stack.settings
        results["server"] = {
            "argon2_time_cost": server.argon2_time_cost,
            "argon2_memory_kib": server.argon2_memory_kib,
            "argon2_parallelism": server.argon2_parallelism,
            "hash_workers": server.hash_workers,
        }
        results["machine"] = _machine(started, load_before)
        results["settings"] = asdict(self.settings)
        return results

    def _phases(self) -> dict[str, Any]:
        bounds: dict[str, Any] = {"argon2": {}}
        rpcs: dict[str, Any] = {}
        profiles: dict[str, Any] = {}
        with self.stack.server(1) as server:
            for rpc in RPCS:
                if rpc == "Authenticate":
                    bounds["argon2"]["before"] = self._argon2()
                rpcs[rpc] = self._alone(server, rpc)
                if rpc == "Authenticate":
                    bounds["argon2"]["after"] = self._argon2()
                if rpc == "GetUser":
                    # Half the rate: the emulator serves the bound's GetItem calls as well.
                    rate = rpcs["GetUser"]["calls_per_second"] / 2
                    beside = self._getuser_beside_parts(server, rate)
                    rpcs["GetUser"]["beside_parts"] = beside.pop("GetUser")
                    bounds.update(beside)
                if rpc in self.settings.profile:
                    profiles[rpc] = self._profiled(server, rpc)
            under_load = self._under_login_load(server)
            bounds["tokens"] = self._bound(
                "tokens", "--target", server.address, "--user-id", self.accounts[0].user_id
            )
            peak_rss = server.peak_rss()
        workers = {
            "1 on 1 core": self._workers(1, one_core=True),
            "1": self._workers(1),
            "2": self._workers(2),
        }
        return {
            "profiles": profiles,
            "rpcs": rpcs,
            "single_worker_peak_rss_bytes": max(peak_rss.values()),
            "under_login_load": under_load,
            "bounds": bounds,
            "workers": workers,
        }

    # -- phases --------------------------------------------------------------------------------

    def _alone(self, server: Server, rpc: str) -> dict[str, Any]:
        """``rpc`` alone, back to back from every client process."""
        specs = [
            self._spec(rpc, server.address, self.settings.streams, part)
            for part in range(self.settings.processes)
        ]
        results, cpu = self._measure(server, specs)
        figures = _figures(results[rpc])
        figures["server_cpu_ms_per_call"] = cpu["server"] / results[rpc].calls * 1000
        figures["emulator_cpu_ms_per_call"] = cpu["emulator"] / results[rpc].calls * 1000
        figures["event_loop_cpu_ms_per_call"] = cpu["main_thread"] / results[rpc].calls * 1000
        figures["other_programs_cores"] = cpu["others_cores"]
        if rpc in HASHING_RPCS:
            figures["hashing_threads_cpu_ms_per_call"] = (
                cpu["hashing_threads"] / results[rpc].calls * 1000
            )
        return figures

    def _profiled(self, server: Server, rpc: str) -> dict[str, Any]:
        """``rpc`` alone again, with py-spy sampling the worker process."""
        assert self.pool is not None
        output = self.out_dir / f"profile-{rpc}.txt"
        specs = [
            self._spec(rpc, server.address, self.settings.streams, part)
            for part in range(self.settings.processes)
        ]
        started: dict[str, Any] = {}

        def on_start() -> None:
            pid = server.worker_pids[0]
            started["py-spy"] = profile.start(pid, self.settings.duration, output)

        self.pool.run(specs, on_start)
        return profile.finish(started["py-spy"], output)

    def _under_login_load(self, server: Server) -> dict[str, Any]:
        """A flood of sign-ins with wrong passwords saturating the hashing threads; GetUser (the
        target), GetJwks (no storage: the event loop's own delay) and GetItem straight to the
        emulator (its own delay) paced beside it, each from a process of its own.

        Each refused sign-in costs one Argon2 verification, as a successful one does (accounts
        locked by the flood verify a dummy hash), but writes no session: the emulator copies
        the whole table for every transaction, and with successful sign-ins it, not hashing,
        would limit the flood.
        """
        settings = self.settings
        logins = [
            replace(
                self._spec("Authenticate", server.address, settings.login_streams, part),
                wrong_password=True,
                expect="UNAUTHENTICATED",
            )
            for part in range(settings.processes - 1)
        ]
        probe = self._spec(
            "GetUser",
            server.address,
            settings.probe_streams,
            settings.processes - 1,
            rate=settings.probe_rate,
        )
        probes = [
            probe,
            replace(probe, rpc="GetJwks"),
            # The emulator's own delay under the same flood, with no server in between.
            replace(probe, rpc="GetItem", target=self.stack.endpoint, table=self.stack.table),
        ]
        # The same probes without the flood first: what the emulator and the machine cost alone.
        quiet, _ = self._measure(server, [None, *probes])
        results, cpu = self._measure(server, [*logins, *probes])
        wall = results["Authenticate"].wall_seconds
        return {
            **{rpc: _figures(result) for rpc, result in results.items()},
            "without_login_load": {rpc: _figures(result) for rpc, result in quiet.items()},
            "probe_rate_asked": settings.probe_streams * settings.probe_rate,
            "hashing_threads_busy": cpu["hashing_threads"] / wall / settings.hash_workers,
            "emulator_cores_used": cpu["emulator"] / wall,
            "other_programs_cores": cpu["others_cores"],
        }

    def _workers(self, count: int, *, one_core: bool = False) -> dict[str, Any]:
        """GetJwks at saturation against ``count`` worker processes. ``one_core`` confines the
        server to one CPU and the load generator to the others."""
        cpus = sorted(os.sched_getaffinity(0))
        server_cpus = {cpus[-1]} if one_core and len(cpus) > 1 else set(cpus)
        client_cpus = set(cpus) - server_cpus or set(cpus)
        with self.stack.server(count) as server:
            for pid in server.worker_pids:
                procstat.pin(pid, server_cpus)
            tool = self._scaling_tool()
            before = procstat.sample(server.worker_pids)
            machine = procstat.machine_busy_seconds()
            began = time.monotonic()
            if tool == "h2load":
                calls, rate, client_cpu = self._h2load(server, client_cpus)
            else:
                calls, rate, client_cpu = self._python_scaling(server, client_cpus, set(cpus))
            wall = time.monotonic() - began
            machine = procstat.machine_busy_seconds() - machine
            used = procstat.sample(server.worker_pids)
            per_worker = {
                pid: used.seconds[pid] - before.seconds[pid] for pid in server.worker_pids
            }
            others = max(0.0, machine - sum(per_worker.values()) - client_cpu) / wall
            return {
                "workers": count,
                "server_cpus": len(server_cpus),
                "load_tool": tool,
                "calls": calls,
                "calls_per_second": rate,
                "server_cpu_ms_per_call": sum(per_worker.values()) / calls * 1000,
                "client_cpu_ms_per_call": client_cpu / calls * 1000,
                "server_cores_used": sum(per_worker.values()) / wall,
                "worker_cpu_share": [per_worker[pid] / wall for pid in server.worker_pids],
                "peak_rss_bytes": list(server.peak_rss().values()),
                "other_programs_cores": others,
            }

    def _h2load(self, server: Server, cpus: set[int]) -> tuple[int, float, float]:
        settings = self.settings
        request = b""  # GetJwksRequest has no fields
        arguments: dict[str, Any] = {
            "connections": settings.scaling_connections,
            "streams": settings.scaling_streams,
            "cpus": cpus,
        }
        h2load.run(server.address, JWKS_METHOD, request, duration=1, **arguments)
        result = h2load.run(
            server.address, JWKS_METHOD, request, duration=settings.duration, **arguments
        )
        if not result.complete(self._jwks_response_bytes(server)):
            raise RuntimeError(f"some GetJwks calls through h2load failed: {result}")
        return result.succeeded, result.calls_per_second, result.cpu_seconds

    def _python_scaling(
        self, server: Server, cpus: set[int], every_cpu: set[int]
    ) -> tuple[int, float, float]:
        assert self.pool is not None
        for pid in self.pool.pids:
            procstat.pin(pid, cpus)
        try:
            specs = [
                self._spec("GetJwks", server.address, self.settings.scaling_streams, part)
                for part in range(self.settings.processes)
            ]
            results, _ = self._measure(server, specs)
        finally:
            for pid in self.pool.pids:
                procstat.pin(pid, every_cpu)
        jwks = results["GetJwks"]
        return jwks.calls, _rate(jwks), jwks.client_cpu_seconds

    # -- bounds --------------------------------------------------------------------------------

    def _getuser_beside_parts(self, server: Server, rate: float) -> dict[str, Any]:
        """GetUser, the bare echo server and aioboto3 GetItem calls side by side, each paced
        at ``rate`` calls/s: all three see the same machine at the same call rate (CPU per
        call falls as the rate rises, since more calls share each wake-up of an event loop)."""
        settings = self.settings
        per_stream = rate / settings.streams
        with _echo_server() as echo, self._getitem_bound(rate) as getitem:
            specs = [
                self._spec("GetUser", server.address, settings.streams, 0, rate=per_stream),
                self._spec("Echo", echo.address, settings.streams, 1, rate=per_stream),
            ]
            echo_cpu: dict[str, procstat.CpuSample] = {}

            def on_start() -> None:
                echo_cpu["before"] = procstat.sample([echo.pid])
                getitem.go()

            results, cpu = self._measure(server, specs, also_on_start=on_start)
            echo_seconds = procstat.used_since(echo_cpu["before"])
            getitem_figures = getitem.result()
        getuser, echo_calls = results["GetUser"], results["Echo"]
        return {
            "GetUser": {
                "calls_per_second": _rate(getuser),
                "server_cpu_ms_per_call": cpu["server"] / getuser.calls * 1000,
            },
            "echo": {
                "calls_per_second": _rate(echo_calls),
                "server_cpu_ms_per_call": echo_seconds / echo_calls.calls * 1000,
            },
            "getitem": getitem_figures,
        }

    @contextmanager
    def _getitem_bound(self, rate: float) -> Iterator[_WaitingBound]:
        """The GetItem bound started and warmed up, measuring from ``go()`` on."""
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bench.bounds",
                "getitem",
                "--duration",
                f"{self.settings.duration:g}",
                "--concurrency",
                str(self.settings.streams),
                "--rate",
                f"{rate:.3f}",
                "--user-id",
                self.accounts[0].user_id,
                "--wait-for-go",
            ],
            cwd=REPOSITORY,
            env=self.stack.environment(1),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the GetItem bound did not start: {process.stderr}")
            yield _WaitingBound(process)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)

    def _argon2(self) -> dict[str, Any]:
        return self._bound("argon2", "--threads", str(self.settings.hash_workers))

    def _bound(self, kind: str, *arguments: str, duration: float | None = None) -> dict[str, Any]:
        """Run ``python -m tests.bench.bounds kind`` with the server's environment, for
        ``duration`` seconds (the bound duration unless given)."""
        duration = duration or self.settings.bound_duration
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.bench.bounds",
                kind,
                "--duration",
                f"{duration:g}",
                *arguments,
            ],
            cwd=REPOSITORY,
            env=self.stack.environment(1),
            capture_output=True,
            text=True,
            timeout=duration * 5 + 120,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"bound {kind} failed:\n{completed.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(completed.stdout)
        return result

    # -- helpers -------------------------------------------------------------------------------

    def _spec(
        self, rpc: str, target: str, streams: int, part: int, *, rate: float | None = None
    ) -> LoadSpec:
        """Process ``part``'s share: its own accounts, so no two streams update one account."""
        assert self.admin is not None
        share = self.accounts[part :: self.settings.processes]
        return LoadSpec(
            rpc=rpc,
            target=target,
            streams=streams,
            duration=self.settings.duration,
            identities=tuple(share),
            admin=self.admin,
            rate=rate,
        )

    def _measure(
        self,
        server: Server,
        specs: list[LoadSpec | None],
        also_on_start: Callable[[], object] = lambda: None,
    ) -> tuple[dict[str, LoadResult], dict[str, float]]:
        """Run a phase; CPU seconds the server (and its main thread, and its other threads)
        and the emulator used during it. ``also_on_start`` runs as the phase starts."""
        assert self.pool is not None
        samples: dict[str, Any] = {}

        def on_start() -> None:
            samples["server"] = procstat.sample(server.worker_pids)
            samples["emulator"] = procstat.sample([self.stack.emulator_pid])
            samples["threads"] = _threads(server)
            samples["machine"] = procstat.machine_busy_seconds()
            samples["began"] = time.monotonic()
            also_on_start()

        results = self.pool.run(specs, on_start)
        machine = procstat.machine_busy_seconds() - samples["machine"]
        wall = time.monotonic() - samples["began"]
        threads_before, threads_after = samples["threads"], _threads(server)
        main = busiest = 0.0
        for pid in server.worker_pids:
            used = {
                tid: seconds - threads_before[pid].get(tid, 0.0)
                for tid, seconds in threads_after[pid].items()
            }
            main += used.pop(pid, 0.0)
            # Python 3.11 does not name OS threads; where hashing dominates, the hashing
            # threads are the busiest ones besides the event loop's.
            busiest += sum(sorted(used.values())[-self.settings.hash_workers :])
        server_cpu = procstat.used_since(samples["server"])
        emulator = procstat.used_since(samples["emulator"])
        clients = sum(result.client_cpu_seconds for result in results.values())
        cpu = {
            "server": server_cpu,
            "emulator": emulator,
            "main_thread": main,
            "other_threads": server_cpu - main,
            "hashing_threads": busiest,
            # What other programs on the machine took meanwhile (never below zero: the
            # counters are read at slightly different moments).
            "others_cores": max(0.0, machine - server_cpu - emulator - clients) / wall,
        }
        return results, cpu

    def _scaling_tool(self) -> str:
        tool = self.settings.load_tool
        if tool == "auto":
            return "h2load" if h2load.available() else "python"
        return tool

    def _jwks_response_bytes(self, server: Server) -> int:
        with grpc.insecure_channel(server.address) as channel:
            stub = auth_service_pb2_grpc.AuthServiceStub(channel)
            response = stub.GetJwks(auth_service_pb2.GetJwksRequest(), timeout=10)
        return response.ByteSize()


@dataclass(frozen=True, slots=True)
class _EchoServer:
    pid: int
    address: str


@contextmanager
def _echo_server() -> Iterator[_EchoServer]:
    """The bare echo server (``python -m tests.bench.echo``), stopped on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.echo"],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        if not banner.startswith(ECHO_BANNER):
            raise RuntimeError(f"the echo server did not start: {banner!r}")
        yield _EchoServer(process.pid, banner.split()[-1])
    finally:
        process.terminate()
        process.wait(10)


class _WaitingBound:
    """A bound process that has warmed up and waits for the word to start measuring."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process

    def go(self) -> None:
        """Start measuring."""
        assert self._process.stdin is not None
        self._process.stdin.write("go\n")
        self._process.stdin.flush()

    def result(self) -> dict[str, Any]:
        """Wait for the measurement and return it."""
        stdout, stderr = self._process.communicate(timeout=120)
        if self._process.returncode != 0:
            raise RuntimeError(f"the bound failed:\n{stderr[-3000:]}")
        result: dict[str, Any] = json.loads(stdout)
        return result


def _threads(server: Server) -> dict[int, dict[int, float]]:
    return {pid: procstat.thread_cpu_seconds(pid) for pid in server.worker_pids}


def _rate(result: LoadResult) -> float:
    return result.calls / result.wall_seconds


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _figures(result: LoadResult) -> dict[str, Any]:
    return {
        "calls": result.calls,
        "errors": dict(result.errors),
        "calls_per_second": _rate(result),
        "p50_ms": percentile(result.latencies, 0.50) * 1000,
        "p99_ms": percentile(result.latencies, 0.99) * 1000,
        "client_cpu_ms_per_call": result.client_cpu_seconds / result.calls * 1000,
    }


def _machine(started: float, load_before: tuple[float, float, float]) -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": time.time() - started,
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "load_average_before": load_before[0],
        "load_average_after": os.getloadavg()[0],
    }
