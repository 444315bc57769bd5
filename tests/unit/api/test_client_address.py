"""The client address (api/client_address.py): the gRPC peer, or the N-th x-forwarded-for
entry from the right behind N trusted proxies, never a forged leftmost entry."""

from __future__ import annotations

import pytest

from usermgmt_server.api.client_address import client_ip, peer_address

PEER = "ipv4:10.0.0.5:41234"  # the load balancer's own address as the server sees it
ALB = 1


def xff(*values: str | bytes) -> list[tuple[str, str | bytes]]:
    return [("x-forwarded-for", value) for value in values]


# -- the peer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:10.1.2.3:5678", "10.1.2.3"),
        ("ipv6:[::1]:5678", "::1"),
        ("ipv6:%5B::1%5D:5678", "::1"),  # how grpcio spells it
        ("ipv6:[2001:DB8::7]:443", "2001:db8::7"),
        ("ipv6:%5B::ffff:192.0.2.7%5D:80", "192.0.2.7"),
        ("unix:/run/usermgmt.sock", "/run/usermgmt.sock"),
        ("unix-abstract:usermgmt", "usermgmt"),
        ("something-else", "something-else"),
        ("", ""),
    ],
)
def test_peer_forms(peer: str, address: str) -> None:
    assert peer_address(peer) == address
    assert client_ip([], peer, 0) == address


def test_without_trusted_hops_the_header_is_ignored() -> None:
    assert client_ip(xff("203.0.113.9"), PEER, 0) == "10.0.0.5"


# -- behind the load balancer --------------------------------------------------------------


def test_one_hop_takes_the_entry_the_load_balancer_added() -> None:
    assert client_ip(xff("203.0.113.9"), PEER, ALB) == "203.0.113.9"


def test_forged_leftmost_entries_are_never_used() -> None:
    # The client sent "1.1.1.1, 2.2.2.2"; the ALB appended the address it saw.
    metadata = xff("1.1.1.1, 2.2.2.2, 203.0.113.9")
    assert client_ip(metadata, PEER, ALB) == "203.0.113.9"


def test_two_hops_take_the_second_entry_from_the_right() -> None:
    # client -> CDN (adds the client) -> ALB (adds the CDN edge)
    metadata = xff("1.1.1.1, 203.0.113.9, 198.51.100.20")
    assert client_ip(metadata, PEER, 2) == "203.0.113.9"


def test_repeated_headers_are_joined_in_order() -> None:
    metadata = [
        ("x-forwarded-for", "1.1.1.1"),
        ("user-agent", "grpc-python"),
        ("x-forwarded-for", "203.0.113.9, 198.51.100.20"),
    ]
    assert client_ip(metadata, PEER, 1) == "198.51.100.20"
    assert client_ip(metadata, PEER, 2) == "203.0.113.9"
    assert client_ip(metadata, PEER, 3) == "1.1.1.1"


def test_header_name_is_matched_case_insensitively() -> None:
    assert client_ip([("X-Forwarded-For", "203.0.113.9")], PEER, ALB) == "203.0.113.9"


def test_bytes_values_are_accepted() -> None:
    assert client_ip(xff(b"203.0.113.9"), PEER, ALB) == "203.0.113.9"


def test_fewer_entries_than_hops_fall_back_to_the_peer() -> None:
    assert client_ip(xff("203.0.113.9"), PEER, 2) == "10.0.0.5"


def test_no_header_falls_back_to_the_peer() -> None:
    assert client_ip([("user-agent", "x")], PEER, ALB) == "10.0.0.5"


@pytest.mark.parametrize(
    "entry",
    ["unknown", "not-an-ip", "300.1.2.3", "1.2.3.4:port", "[::1", "[::1]x", "1.2.3.4:²", "_"],
)
def test_an_invalid_entry_falls_back_to_the_peer(entry: str) -> None:
    assert client_ip(xff(f"1.1.1.1, {entry}"), PEER, ALB) == "10.0.0.5"


def test_empty_entries_are_skipped() -> None:
    assert client_ip(xff(" , 203.0.113.9 ,"), PEER, ALB) == "203.0.113.9"


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("  203.0.113.9  ", "203.0.113.9"),
        ("203.0.113.9:61234", "203.0.113.9"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:61234", "2001:db8::1"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
    ],
)
def test_entries_are_canonicalised(entry: str, address: str) -> None:
    assert client_ip(xff(entry), PEER, ALB) == address
