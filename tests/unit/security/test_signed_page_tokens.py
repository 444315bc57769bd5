"""Page tokens: opaque, URL-safe, signed, bound to their filter, refused when touched."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from usermgmt_server.adapters.security.keyed_hash import derive_key
from usermgmt_server.adapters.security.page_tokens import MAX_TOKEN_CHARS, SignedPageTokens
from usermgmt_server.domain.errors import InvalidPageToken

SECRET = b"k" * 32
BINDING = "state=ACTIVE"
CURSOR: dict[str, object] = {"pk": {"S": "USER#3f1c6d0e"}, "sk": {"S": "PROFILE"}, "n": 7}


@pytest.fixture
def codec() -> SignedPageTokens:
    return SignedPageTokens(derive_key(SECRET, "page-token"))


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _description(error: pytest.ExceptionInfo[InvalidPageToken]) -> str:
    (violation,) = error.value.violations
    assert violation.field == "page_token"
    return violation.description


def test_round_trip(codec: SignedPageTokens) -> None:
    assert codec.decode(codec.encode(CURSOR, BINDING), BINDING) == CURSOR


def test_round_trip_with_empty_binding_and_unicode(codec: SignedPageTokens) -> None:
    cursor: dict[str, object] = {"name": "Zoë ✓", "list": [1, None, True]}
    assert codec.decode(codec.encode(cursor, ""), "") == cursor


def test_token_is_url_safe_and_opaque(codec: SignedPageTokens) -> None:
    token = codec.encode(CURSOR, BINDING)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert "USER" not in token


def test_every_flipped_byte_is_refused(codec: SignedPageTokens) -> None:
    raw = _raw(codec.encode(CURSOR, BINDING))
    for position in range(len(raw)):
        for mask in (0x01, 0x80):
            forged = bytearray(raw)
            forged[position] ^= mask
            with pytest.raises(InvalidPageToken):
                codec.decode(_token(bytes(forged)), BINDING)


def test_truncated_or_extended_tokens_are_refused(codec: SignedPageTokens) -> None:
    raw = _raw(codec.encode(CURSOR, BINDING))
    for forged in (raw[:-1], raw[1:], raw + b"\x00", raw[:32], raw[-32:]):
        with pytest.raises(InvalidPageToken):
            codec.decode(_token(forged), BINDING)


def test_tampering_is_described(codec: SignedPageTokens) -> None:
    raw = bytearray(_raw(codec.encode(CURSOR, BINDING)))
    raw[3] ^= 0x20
    with pytest.raises(InvalidPageToken) as error:
        codec.decode(_token(bytes(raw)), BINDING)
    assert _description(error) == "was altered or was not issued by this service"


def test_other_binding_is_refused(codec: SignedPageTokens) -> None:
    token = codec.encode(CURSOR, BINDING)
    for other in ("", "state=DISABLED", "state=ACTIVE ", "STATE=ACTIVE"):
        with pytest.raises(InvalidPageToken) as error:
            codec.decode(token, other)
        assert _description(error) == "was issued for a different filter"


def test_other_key_is_refused(codec: SignedPageTokens) -> None:
    token = SignedPageTokens(derive_key(b"o" * 32, "page-token")).encode(CURSOR, BINDING)
    with pytest.raises(InvalidPageToken):
        codec.decode(token, BINDING)


def test_other_version_is_refused() -> None:
    key = derive_key(SECRET, "page-token")
    codec = SignedPageTokens(key)
    token = codec.encode(CURSOR, BINDING)
    raw = _raw(token)
    payload = raw[:-32].replace(b'"v":1', b'"v":2')
    forged = _token(payload + hmac.new(key, payload, hashlib.sha256).digest())
    with pytest.raises(InvalidPageToken) as error:
        codec.decode(forged, BINDING)
    assert "version" in _description(error)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "a",
        "abcde",
        "not a token!",
        "%%%%",
        "AAAA=",
        "AAAA====",
        "a+b/c",
        "Zm9v",
        "é",
        "A" * 100,
        "A" * (MAX_TOKEN_CHARS + 1),
        "A" * 1_000_000,
    ],
)
def test_garbage_is_refused(codec: SignedPageTokens, garbage: str) -> None:
    with pytest.raises(InvalidPageToken):
        codec.decode(garbage, BINDING)


def test_oversized_is_described(codec: SignedPageTokens) -> None:
    with pytest.raises(InvalidPageToken) as error:
        codec.decode("A" * (MAX_TOKEN_CHARS + 1), BINDING)
    assert "too long" in _description(error)


def test_non_canonical_base64_is_refused(codec: SignedPageTokens) -> None:
    # Two encodings of the same bytes: the last character's unused low bit differs.
    token = next(t for n in range(10) if len(t := codec.encode({"n": "x" * n}, BINDING)) % 4 != 0)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]
    assert _raw(sibling) == _raw(token)
    with pytest.raises(InvalidPageToken):
        codec.decode(sibling, BINDING)


def test_cursor_too_big_for_a_token_is_an_encoding_error(codec: SignedPageTokens) -> None:
    with pytest.raises(ValueError):
        codec.encode({"pk": "x" * MAX_TOKEN_CHARS}, BINDING)


def test_short_key_is_rejected() -> None:
    with pytest.raises(ValueError):
        SignedPageTokens(b"short")
