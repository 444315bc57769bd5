"""The client's IP address, for per-address rate limits and logs.

Behind the AWS Application Load Balancer the TCP peer is the load balancer, and the client's
address arrives in ``x-forwarded-for``. Each proxy *appends* the address it received the
connection from, so only the rightmost entries were written by proxies we run; everything to
their left was sent by the client and may be forged. With ``trusted_hops = N`` (the number of
proxies in front of the service: 1 for the ALB alone) the client is the N-th entry from the
right. Whenever that entry is missing or is not an IP address, the TCP peer is used instead,
so a bad header can never choose the key it is counted under.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import unquote

FORWARDED_FOR = "x-forwarded-for"
_PORT = re.compile(r"[0-9]{1,5}")


def client_ip(metadata: Sequence[tuple[str, str | bytes]], peer: str, trusted_hops: int) -> str:
    """The client's address: from ``x-forwarded-for`` when ``trusted_hops > 0``, else the peer.

    ``peer`` is ``context.peer()`` (``ipv4:10.1.2.3:5678``, ``ipv6:[::1]:5678``, the same with
    URI-escaped brackets, or ``unix:/path``). Addresses come back in canonical form, with
    IPv4-mapped IPv6 addresses as plain IPv4, so one client always yields the same key.
    """
    if trusted_hops > 0:
        entries = _forwarded_entries(metadata)
        if len(entries) >= trusted_hops:
            address = _parse_address(entries[-trusted_hops])
            if address is not None:
                return address
    return peer_address(peer)


def peer_address(peer: str) -> str:
    """The address part of a gRPC peer string (the port dropped); unknown forms unchanged."""
    scheme, separator, rest = peer.partition(":")
    if not separator:
        return peer
    if scheme in ("ipv4", "ipv6"):
        return _parse_address(unquote(rest)) or rest
    if scheme in ("unix", "unix-abstract"):
        return rest
    return peer


def _forwarded_entries(metadata: Sequence[tuple[str, str | bytes]]) -> list[str]:
    """Every ``x-forwarded-for`` entry, left to right, across repeated headers."""
    entries: list[str] = []
    for key, value in metadata:
        if key.lower() != FORWARDED_FOR:
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        entries.extend(entry for entry in (part.strip() for part in text.split(",")) if entry)
    return entries


def _parse_address(text: str) -> str | None:
    """``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]`` or ``[::1]:80`` → canonical address."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and _PORT.fullmatch(port[1:]))):
            return None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not _PORT.fullmatch(port):
            return None
    else:
        host = text
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
