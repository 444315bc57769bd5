"""Where a server process spends its time under one RPC's load: py-spy samples the thread
holding the GIL (the hashing threads release it, so this is the Python work of the event loop
and gRPC's callbacks) and the collapsed stacks are summed per function: self is the innermost
frame, total counts a frame of the service's own code anywhere in the stack. A profiled phase is
run again after the measured one, since sampling slows the server."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PY_SPY = str(Path(sys.executable).parent / "py-spy")
SAMPLES_PER_SECOND = 250


def start(pid: int, duration: float, output: Path) -> subprocess.Popen[bytes]:
    """Start sampling every thread of ``pid`` for ``duration`` seconds into ``output``."""
    return subprocess.Popen(
        [
            PY_SPY,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(duration))),
            "--rate",
            str(SAMPLES_PER_SECOND),
            "--format",
            "raw",
            "--output",
            str(output),
            "--gil",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen[bytes], output: Path, limit: int = 12) -> dict[str, Any]:
    """Wait for py-spy and summarise what it recorded."""
    _, stderr = process.communicate(timeout=120)
    if process.returncode != 0 or not output.exists():
        raise RuntimeError(f"py-spy failed ({process.returncode}): {stderr.decode()[-2000:]}")
    return top_entries(output.read_text(), limit)


def _own_code(frame: str) -> bool:
    """Whether ``frame`` is in the service's or client package's code (but not the entry
    point, which is in every stack)."""
    return ("usermgmt_server/" in frame or "usermgmt/" in frame) and "cli.py" not in frame


def top_entries(collapsed: str, limit: int) -> dict[str, Any]:
    """The ``limit`` functions with most samples, by self and by total, as shares of all."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            if _own_code(frame):
                anywhere[frame] += count
    if not samples:
        raise ValueError("py-spy recorded no samples")
    return {
        "samples": samples,
        "self": [[frame, n / samples] for frame, n in own.most_common(limit)],
        "total": [[frame, n / samples] for frame, n in anywhere.most_common(limit)],
    }
