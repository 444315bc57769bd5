"""A child process of the cluster with its log file, and the waiting that goes with it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


class ClusterError(Exception):
    """A part of the cluster did not start or stop as it should; the message says which."""


def wait_until(
    condition: Callable[[], object], *, within: float, what: str, every: float = 0.05
) -> object:
    """Poll ``condition`` until it returns something truthy (returned), or raise ClusterError."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {within:g} s waiting for {what}")
        time.sleep(every)


class LoggedProcess:
    """One child process whose stdout and stderr go to ``log_path`` (appended on restarts)."""

    def __init__(
        self, name: str, command: Sequence[str], env: Mapping[str, str], log_path: Path
    ) -> None:
        self.name = name
        self.command = list(command)
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.log_offset = 0

    def start(self) -> None:
        """Start (again); output from here on is read by ``wait_for_output``."""
        self.log_path.touch()
        self.log_offset = self.log_path.stat().st_size
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=REPOSITORY,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Ctrl-C reaches only the cluster command, which stops the parts in order.
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The current process id."""
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def output(self, since: int | None = None) -> str:
        """The log from ``since`` (default: the current start) to now."""
        with self.log_path.open("rb") as log:
            log.seek(self.log_offset if since is None else since)
            return log.read().decode(errors="replace")

    def wait_for_output(self, pattern: str, within: float) -> re.Match[str]:
        """Wait until the output of the current start matches ``pattern``; fail if it exits."""

        def matched() -> re.Match[str] | None:
            found = re.search(pattern, self.output())
            if found is None and not self.running:
                raise ClusterError(
                    f"{self.name} exited with code {self.exit_code} before printing "
                    f"{pattern!r}; its log:\n{self.output()[-3000:]}"
                )
            return found

        match = wait_until(matched, within=within, what=f"{self.name} to print {pattern!r}")
        assert isinstance(match, re.Match)
        return match

    def signal(self, signum: int) -> None:
        """Send ``signum`` if the process still runs."""
        if self.running:
            assert self.process is not None
            os.kill(self.process.pid, signum)

    def wait(self, within: float) -> int:
        """Wait for the exit; its code (negative: the signal that ended it)."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{self.name} did not exit within {within:g} s") from None

    @property
    def exit_code(self) -> int | None:
        """The exit code, or None while running (or never started)."""
        return None if self.process is None else self.process.poll()

    def stop(self, within: float) -> int | None:
        """SIGTERM, then SIGKILL after ``within`` seconds; the exit code."""
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
