"""Authenticated encryption of short secrets that must wait in storage (codes in the outbox)."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_CONTEXT = b"usermgmt/sealed-code/v1"


class AesGcmSealer:
    """``CodeSealer``: AES-256-GCM with a random nonce; the result is URL-safe text.

    The key comes from the service's shared secret (``derive_key(secret, "outbox-seal")``), so
    every instance can open what another sealed.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the sealing key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plain: str) -> str:
        """Encrypt and authenticate ``plain``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plain.encode("utf-8"), _CONTEXT)
        return base64.urlsafe_b64encode(sealed).decode("ascii")

    def unseal(self, sealed: str) -> str:
        """The plain text; raises ``ValueError`` for anything not sealed with this key."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _CONTEXT)
        except (InvalidTag, ValueError, UnicodeEncodeError) as error:
            raise ValueError("not a sealed value of this service") from error
        return plain.decode("utf-8")
