"""Opaque, HMAC-signed page tokens bound to the filter they were issued for (AIP-158)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re

from usermgmt_server.domain.errors import InvalidPageToken

MAX_TOKEN_CHARS = 4096
TOKEN_VERSION = 1
_TAG_BYTES = 32
_BINDING_BYTES = 16
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]+")


class SignedPageTokens:
    """``PageTokenCodec`` whose tokens are ``base64url(payload || HMAC-SHA256(payload))``.

    The payload is compact JSON ``{"v":1,"b":<filter digest>,"c":<cursor>}``; the cursor must be
    JSON-serialisable. Tokens are URL-safe, unpadded, and at most ``MAX_TOKEN_CHARS`` long.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the page-token key must be at least 32 bytes")
        self._key = bytes(key)

    def encode(self, cursor: dict[str, object], binding: str) -> str:
        """A token carrying ``cursor`` that only ``decode(token, binding)`` accepts."""
        body = {"v": TOKEN_VERSION, "b": _binding_digest(binding), "c": cursor}
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        token = _b64encode(payload + self._tag(payload))
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError(f"the cursor is too large for a page token ({len(token)} chars)")
        return token

    def decode(self, token: str, binding: str) -> dict[str, object]:
        """The cursor inside ``token``; ``InvalidPageToken`` unless it is intact and bound here."""
        if not token:
            raise InvalidPageToken("is empty")
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidPageToken(f"is too long (at most {MAX_TOKEN_CHARS} characters)")
        raw = _b64decode(token)
        if raw is None or len(raw) <= _TAG_BYTES:
            raise InvalidPageToken("is not a valid page token; pass back next_page_token unchanged")
        payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(payload)):
            raise InvalidPageToken("was altered or was not issued by this service")
        try:
            body = json.loads(payload)
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("v") != TOKEN_VERSION:
            raise InvalidPageToken("has an unsupported version; start again from the first page")
        if body.get("b") != _binding_digest(binding):
            raise InvalidPageToken("was issued for a different filter")
        cursor = body.get("c")
        if not isinstance(cursor, dict):
            raise InvalidPageToken("is not a valid page token; pass back next_page_token unchanged")
        return cursor

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()


def _binding_digest(binding: str) -> str:
    return _b64encode(hashlib.sha256(binding.encode("utf-8")).digest()[:_BINDING_BYTES])


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(token: str) -> bytes | None:
    """The bytes of an unpadded base64url string, or ``None`` unless it is the canonical form."""
    if not _TOKEN_PATTERN.fullmatch(token) or len(token) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    # Unused low bits of the last character would let several strings decode alike.
    return raw if _b64encode(raw) == token else None
