"""Saturating a server with unary gRPC calls through h2load (Debian's nghttp2-client), a load
generator in C that costs far less CPU per call than a Python client: on a machine whose cores
the server shares with its clients, that is what lets a second worker process show its worth.

h2load speaks HTTP/2, not gRPC: it posts one framed message and counts HTTP statuses, and a gRPC
error is an HTTP 200 whose status is in the trailers. Errors therefore show as responses without
the expected message bytes, which ``H2loadResult.complete`` checks.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_REQUESTS = re.compile(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded")
_RATE = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
_TRAFFIC = re.compile(r"traffic: .*?, [\d.]+\w*B \((\d+)\) data")
# The 5-byte gRPC frame prefix of every message: compressed flag and big-endian length.
_FRAME_PREFIX = 5


def available() -> bool:
    """Whether h2load is installed."""
    return shutil.which("h2load") is not None


@dataclass(frozen=True, slots=True)
class H2loadResult:
    """What h2load reported for one run."""

    succeeded: int
    calls_per_second: float
    data_bytes: int
    cpu_seconds: float = 0.0

    def complete(self, response_bytes: int) -> bool:
        """Whether every succeeded call carried a whole response message of ``response_bytes``
        (so none of them was a gRPC error)."""
        return self.data_bytes >= self.succeeded * (response_bytes + _FRAME_PREFIX)


def parse(output: str) -> H2loadResult:
    """Read h2load's summary; ``ValueError`` if it is not there."""
    requests, rate, traffic = (p.search(output) for p in (_REQUESTS, _RATE, _TRAFFIC))
    if requests is None or rate is None or traffic is None:
        raise ValueError(f"h2load printed no summary:\n{output[-2000:]}")
    return H2loadResult(int(requests.group(3)), float(rate.group(1)), int(traffic.group(1)))


def run(
    address: str,
    method: str,
    request: bytes,
    *,
    duration: float,
    connections: int,
    streams: int,
    cpus: set[int] | None = None,
) -> H2loadResult:
    """Call ``method`` (``/package.Service/Method``) on ``address`` with ``connections``
    connections and ``streams`` calls in flight on each, for ``duration`` seconds; ``cpus``
    confines h2load to those CPUs. The result includes h2load's own CPU time."""
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "request"
        body.write_bytes(b"\x00" + len(request).to_bytes(4, "big") + request)
        command = [
            "h2load",
            f"--clients={connections}",
            f"--max-concurrent-streams={streams}",
            "--threads=1",
            f"--duration={round(duration * 1000)}ms",
            f"--data={body}",
            "--header=content-type: application/grpc",
            "--header=te: trailers",
            f"http://{address}{method}",
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=duration + 60,
            preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"h2load failed ({completed.returncode}):\n{completed.stderr[-2000:]}")
    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    summary = parse(completed.stdout)
    return H2loadResult(summary.succeeded, summary.calls_per_second, summary.data_bytes, used)
