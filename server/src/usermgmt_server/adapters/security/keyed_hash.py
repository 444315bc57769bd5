"""Keyed digests (HMAC-SHA256) with one derived key per purpose."""

from __future__ import annotations

import hashlib
import hmac

MIN_SECRET_BYTES = 32
_LABEL_PREFIX = b"usermgmt/"


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for ``purpose``: HMAC-SHA256(secret, "usermgmt/" + purpose).

    Deriving instead of reusing ``secret`` keeps uses apart: a digest made for one purpose
    can never be replayed as a tag or digest of another.
    """
    _check_secret(secret)
    if not purpose:
        raise ValueError("purpose must not be empty")
    return hmac.new(secret, _LABEL_PREFIX + purpose.encode("utf-8"), hashlib.sha256).digest()


class HmacKeyedHasher:
    """``KeyedHasher`` over HMAC-SHA256 with per-purpose subkeys derived by ``derive_key``."""

    def __init__(self, secret: bytes) -> None:
        _check_secret(secret)
        self._secret = secret
        self._subkeys: dict[str, bytes] = {}

    def digest(self, purpose: str, data: bytes) -> str:
        """The hex HMAC-SHA256 of ``data`` under the subkey of ``purpose``."""
        key = self._subkeys.get(purpose)
        if key is None:
            key = self._subkeys[purpose] = derive_key(self._secret, purpose)
        return hmac.new(key, data, hashlib.sha256).hexdigest()


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes | bytearray):
        raise TypeError("the HMAC secret must be bytes")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the HMAC secret must be at least {MIN_SECRET_BYTES} bytes")
