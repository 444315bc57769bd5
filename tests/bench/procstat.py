"""CPU time and memory of other processes, read from /proc (Linux only)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds that process ``pid`` (all its threads) has used so far."""
    stat = (_PROC / str(pid) / "stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS_PER_SECOND


def peak_rss_bytes(pid: int) -> int:
    """The largest resident set process ``pid`` has had (VmHWM)."""
    for line in (_PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmHWM for process {pid}")


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, in pid order."""
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds of a set of processes at one moment (per pid)."""

    seconds: dict[int, float]

    @property
    def total(self) -> float:
        """CPU seconds of all the processes together."""
        return sum(self.seconds.values())


def sample(pids: Iterable[int]) -> CpuSample:
    """The CPU seconds of ``pids`` now."""
    return CpuSample({pid: cpu_seconds(pid) for pid in pids})


def used_since(before: CpuSample) -> float:
    """CPU seconds the processes of ``before`` have used since it was taken."""
    return sample(before.seconds).total - before.total


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of process ``pid`` (thread id ``pid`` is its main thread)."""
    found = {}
    for task in (_PROC / str(pid) / "task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(task.name)] = (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND
    return found


def pin(pid: int, cpus: set[int]) -> None:
    """Let every thread of process ``pid`` run only on ``cpus`` (threads it starts later
    inherit that from the thread that starts them)."""
    for task in (_PROC / str(pid) / "task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            continue


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs together have spent busy since boot (every process's, ours too)."""
    fields = (_PROC / "stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS_PER_SECOND
