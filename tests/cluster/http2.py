"""A bare HTTP/2 connection (RFC 9113 framing only) for tests that must control PINGs
exactly, which gRPC clients do not allow."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, PING, GOAWAY = 0x4, 0x6, 0x7
ACK = 0x1
ENHANCE_YOUR_CALM = 0xB


@dataclass(frozen=True)
class Frame:
    """One received frame."""

    type: int
    flags: int
    stream: int
    payload: bytes


@dataclass(frozen=True)
class GoAway:
    """The decoded payload of a GOAWAY frame."""

    last_stream: int
    error_code: int
    debug: bytes


class Http2Connection:
    """A client connection that sends the preface, acknowledges settings and sends PINGs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.ping_acks = 0

    @classmethod
    async def open(cls, host: str, port: int) -> Http2Connection:
        """Connect and send the client preface with empty settings."""
        reader, writer = await asyncio.open_connection(host, port)
        connection = cls(reader, writer)
        writer.write(PREFACE + connection._frame(SETTINGS, 0, b""))
        await writer.drain()
        return connection

    async def ping(self, opaque: int) -> None:
        """Send a PING with 8 bytes of ``opaque`` data."""
        self._writer.write(self._frame(PING, 0, struct.pack(">Q", opaque)))
        await self._writer.drain()

    async def next_goaway(self, within: float) -> GoAway | None:
        """Read frames (acknowledging the server's settings and PINGs) until a GOAWAY arrives,
        the connection closes, or ``within`` seconds pass; the GOAWAY, or None."""
        try:
            async with asyncio.timeout(within):
                while True:
                    frame = await self._read_frame()
                    if frame is None:
                        return None
                    if frame.type == GOAWAY:
                        last, code = struct.unpack(">II", frame.payload[:8])
                        return GoAway(last & 0x7FFFFFFF, code, frame.payload[8:])
                    await self._answer(frame)
        except TimeoutError:
            return None

    async def close(self) -> None:
        """Close the socket."""
        self._writer.close()
        await self._writer.wait_closed()

    async def _answer(self, frame: Frame) -> None:
        if frame.type == SETTINGS and not frame.flags & ACK:
            self._writer.write(self._frame(SETTINGS, ACK, b""))
        elif frame.type == PING and frame.flags & ACK:
            self.ping_acks += 1
        elif frame.type == PING:
            self._writer.write(self._frame(PING, ACK, frame.payload))
        await self._writer.drain()

    async def _read_frame(self) -> Frame | None:
        try:
            header = await self._reader.readexactly(9)
            length = int.from_bytes(header[:3], "big")
            payload = await self._reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
        return Frame(header[3], header[4], stream, payload)

    @staticmethod
    def _frame(kind: int, flags: int, payload: bytes) -> bytes:
        return (
            len(payload).to_bytes(3, "big")
            + bytes([kind, flags])
            + (0).to_bytes(4, "big")
            + payload
        )
