"""Running the ``usermgmt`` command as a child process: with its own configuration directory,
or attached to a pseudo-terminal as at a shell."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness import PASSWORD


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


class Cli:
    """Runs ``python -m usermgmt.cli`` with its own HOME and XDG_CONFIG_HOME."""

    def __init__(self, home: Path, target: str) -> None:
        self.home = home
        self.config = home / "config"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "LANG": "C.UTF-8",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(self.config),
            "USERMGMT_TARGET": target,
        }
        self.target = target

    @property
    def credentials(self) -> Path:
        return self.config / "usermgmt" / "credentials.json"

    def stored(self) -> dict:
        return json.loads(self.credentials.read_text())["sessions"].get(self.target, {})

    async def __call__(
        self,
        *args: str,
        stdin: str = "",
        command: tuple[str, ...] | None = None,
        within: float = 60,
    ) -> Result:
        # The server runs in this process's event loop: the child must be awaited, not waited.
        process = await asyncio.create_subprocess_exec(
            *(command or (sys.executable, "-m", "usermgmt.cli")),
            *args,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin.encode()), within)
        assert process.returncode is not None
        return Result(process.returncode, stdout.decode(), stderr.decode())

    async def login(self, login: str, password: str = PASSWORD) -> Result:
        return await self("login", login, "--password-stdin", stdin=password + "\n")


class Terminal:
    """A command attached to a pseudo-terminal as its controlling terminal, as at a shell."""

    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self.master = master
        self.seen = ""

    async def expect(self, text: str, within: float = 30) -> None:
        """Read the screen until ``text`` appears."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while text not in self.seen:
            assert loop.time() < deadline, f"{text!r} never appeared in {self.seen!r}"
            self.seen += await asyncio.to_thread(self._read)

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def _read(self) -> str:
        import select

        ready, _, _ = select.select([self.master], [], [], 0.2)
        if not ready:
            return ""
        try:
            return os.read(self.master, 4096).decode(errors="replace")
        except OSError:  # the command exited and closed the terminal
            return ""

    async def finish(self) -> int:
        code = await asyncio.wait_for(self.process.wait(), 30)
        self.seen += await asyncio.to_thread(self._read)
        os.close(self.master)
        return code


# Run in the child after setsid: take the terminal on standard input as the controlling one,
# then become the command (no Python code runs between fork and exec in this process).
_TAKE_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'usermgmt.cli', *sys.argv[1:]])"
)


async def at_terminal(cli: Cli, *args: str) -> Terminal:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    # A terminal has a size (rows, columns), as a shell's would.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _TAKE_TERMINAL,
        *args,
        env=cli.env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    return Terminal(process, master)
