"""The line between a worker process and its supervisor.

The supervisor hands each worker one end of a socket pair. The worker writes ``ready`` once it
serves; the supervisor never writes, so the worker reads end-of-file exactly when the supervisor
is gone (even after SIGKILL) and then drains and stops instead of living on unsupervised.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

READY = b"ready\n"
WORKER_INDEX_FLAG = "--worker-index"
SUPERVISOR_FD_FLAG = "--supervisor-fd"


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """This process is worker ``index`` of a supervisor reachable on ``supervisor_fd``."""

    index: int
    supervisor_fd: int


class SupervisorLink:
    """The worker's end of the socket pair shared with its supervisor."""

    def __init__(self, fd: int) -> None:
        self._socket = socket.socket(fileno=fd)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Attach the socket to the running event loop."""
        self._reader, self._writer = await asyncio.open_connection(sock=self._socket)

    async def announce_ready(self) -> None:
        """Tell the supervisor this worker serves."""
        assert self._writer is not None
        self._writer.write(READY)
        await self._writer.drain()

    async def wait_until_supervisor_gone(self) -> None:
        """Return when the supervisor has closed its end or died."""
        assert self._reader is not None
        try:
            while await self._reader.read(4096):
                pass
        except ConnectionError:
            return

    def close(self) -> None:
        """Release the socket."""
        if self._writer is not None:
            self._writer.close()
        else:
            self._socket.close()
