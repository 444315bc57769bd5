"""Reserve the listening port in the supervisor, so every worker (and every restarted one)
binds the same port, even when the configured port is 0."""

from __future__ import annotations

import socket
from types import TracebackType


class PortReservation:
    """A bound, never-listening socket holding ``address``'s port with SO_REUSEPORT.

    Workers bind the same port with SO_REUSEPORT and the kernel spreads connections over
    their listening sockets only; this one receives none. While it is held, no process
    without SO_REUSEPORT (of another user, or another program) can take the port between a
    worker's crash and its restart.
    """

    def __init__(self, listen_address: str) -> None:
        host, separator, port_text = listen_address.rpartition(":")
        if not separator or not port_text.isdigit():
            raise ValueError(f"expected host:port, got {listen_address!r}")
        bare_host = host.strip("[]") or "0.0.0.0"
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            bare_host, int(port_text), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        self._socket = socket.socket(family, kind, proto)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            self._socket.bind(sockaddr)
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        self.address = f"{host}:{self.port}"

    def close(self) -> None:
        """Give the port up."""
        self._socket.close()

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
