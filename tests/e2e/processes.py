"""Run the ``usermgmt-server`` command as a real child process."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER_COMMAND = str(Path(sys.executable).parent / "usermgmt-server")
_LISTENING = re.compile(r"usermgmt listening on (\S+):(\d+)")


def clean_environment(**variables: str) -> dict[str, str]:
    """A minimal environment: no AWS or USERMGMT variables leak in from the test process.

    One server process unless a test asks for workers: killing "the server" then kills it.
    """
    keep = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return {**keep, "USERMGMT_WORKERS": "1", **variables}


@dataclass
class ServerProcess:
    """A started server process and the lines it printed before serving."""

    process: asyncio.subprocess.Process
    port: int
    banner: list[str]
    stderr: list[str]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


async def run_command(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``usermgmt-server`` with ``args`` to completion; returns (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        SERVER_COMMAND,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@asynccontextmanager
async def server_process(*args: str, env: dict[str, str]) -> AsyncIterator[ServerProcess]:
    """Start ``usermgmt-server`` and wait for its banner; kill it on exit if still running."""
    process = await asyncio.create_subprocess_exec(
        SERVER_COMMAND,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    banner: list[str] = []
    stderr: list[str] = []
    assert process.stderr is not None
    # A child writing logs into a full pipe blocks: keep the pipe drained.
    drain = asyncio.create_task(_collect(process.stderr, stderr))
    try:
        assert process.stdout is not None
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            if not line:
                await asyncio.wait_for(process.wait(), 10)
                raise AssertionError("server exited before serving:\n" + "".join(stderr))
            banner.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match:
                break
        yield ServerProcess(process, int(match.group(2)), banner, stderr)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        drain.cancel()


async def _collect(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode(errors="replace"))
