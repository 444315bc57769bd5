"""Keyed digests: per-purpose separation and the minimum secret length."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from usermgmt_server.adapters.security.keyed_hash import HmacKeyedHasher, derive_key

SECRET = bytes(range(32))


def test_digest_is_hex_hmac_under_the_derived_key() -> None:
    expected_key = hmac.new(SECRET, b"usermgmt/idempotency", hashlib.sha256).digest()
    expected = hmac.new(expected_key, b"payload", hashlib.sha256).hexdigest()
    assert HmacKeyedHasher(SECRET).digest("idempotency", b"payload") == expected


def test_purposes_give_different_digests() -> None:
    hasher = HmacKeyedHasher(SECRET)
    assert hasher.digest("idempotency", b"data") != hasher.digest("lockout", b"data")


def test_digest_is_stable_and_depends_on_the_secret() -> None:
    hasher = HmacKeyedHasher(SECRET)
    assert hasher.digest("p", b"data") == hasher.digest("p", b"data")
    assert hasher.digest("p", b"data") == HmacKeyedHasher(SECRET).digest("p", b"data")
    assert hasher.digest("p", b"data") != HmacKeyedHasher(b"\x01" * 32).digest("p", b"data")
    assert hasher.digest("p", b"data") != hasher.digest("p", b"datA")


def test_derived_keys_are_separate_per_purpose() -> None:
    page_key = derive_key(SECRET, "page-token")
    assert len(page_key) == 32
    assert page_key != derive_key(SECRET, "idempotency") != SECRET
    assert page_key == derive_key(SECRET, "page-token")


@pytest.mark.parametrize("secret", [b"", b"x" * 31])
def test_short_secret_is_rejected(secret: bytes) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        HmacKeyedHasher(secret)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        derive_key(secret, "page-token")


def test_empty_purpose_is_rejected() -> None:
    with pytest.raises(ValueError):
        derive_key(SECRET, "")
