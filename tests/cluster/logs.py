"""Read the JSON log lines that server processes write to stderr."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def records(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Every JSON object among ``lines`` (anything else, e.g. a traceback, is skipped)."""
    found = []
    for line in lines:
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            found.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return found


def served_by(lines: Iterable[str], method: str) -> list[tuple[int, int]]:
    """(worker index, pid) of each successful call of ``method`` (the DEBUG ``rpc`` line)."""
    return [
        (record["worker"], record["pid"])
        for record in records(lines)
        if record.get("message") == "rpc"
        and record.get("method") == method
        and record.get("code") == "OK"
    ]


def worker_pids(lines: Iterable[str]) -> dict[int, int]:
    """Worker index → pid of the newest process of that worker that started serving."""
    pids: dict[int, int] = {}
    for record in records(lines):
        if record.get("message") == "serving" and "worker" in record:
            pids[record["worker"]] = record["pid"]
    return pids


def process_exited(pid: int) -> bool:
    """Whether process ``pid`` has exited (it is gone, or a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # A zombie's state is Z: it has exited and waits for its parent to reap it.
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
