"""Sealed codes: only this service's key opens them, and any change is detected."""

from __future__ import annotations

import base64

import pytest

from usermgmt_server.adapters.security.keyed_hash import derive_key
from usermgmt_server.adapters.security.sealing import AesGcmSealer

SECRET = b"s" * 32


def sealer(secret: bytes = SECRET) -> AesGcmSealer:
    return AesGcmSealer(derive_key(secret, "outbox-seal"))


def test_round_trip_and_no_plain_text() -> None:
    sealed = sealer().seal("493027")
    assert "493027" not in sealed
    assert sealer().unseal(sealed) == "493027"


def test_each_seal_differs() -> None:
    assert sealer().seal("493027") != sealer().seal("493027")


def test_another_key_cannot_open() -> None:
    with pytest.raises(ValueError):
        sealer(b"t" * 32).unseal(sealer().seal("493027"))


def test_tampering_is_detected() -> None:
    raw = bytearray(base64.urlsafe_b64decode(sealer().seal("493027")))
    raw[-1] ^= 1
    with pytest.raises(ValueError):
        sealer().unseal(base64.urlsafe_b64encode(bytes(raw)).decode())
    with pytest.raises(ValueError):
        sealer().unseal("garbage!")


def test_key_size_is_checked() -> None:
    with pytest.raises(ValueError):
        AesGcmSealer(b"short")
