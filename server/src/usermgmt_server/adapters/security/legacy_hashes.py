"""Password hashes made by other systems, verified until a sign-in replaces them with Argon2id.

Each scheme is recognised by the prefix of the hash string:

- bcrypt: ``$2b$``, ``$2a$`` or ``$2y$``, cost 4 to 16. Like the systems that made them, only
  the first 72 bytes of a password count.
- Django's PBKDF2-SHA256: ``pbkdf2_sha256$<iterations>$<salt>$<base64 of the 32-byte key>``;
  the salt is used as written.
- passlib's PBKDF2-SHA256: ``$pbkdf2-sha256$<rounds>$<salt>$<key>``, salt and key in passlib's
  "adapted base64" (``.`` for ``+``, no padding).

Iteration counts and costs are bounded (PBKDF2: 1 to 10,000,000 iterations) so that no
imported hash can tie up a hashing thread for long. Verification compares in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Protocol

import bcrypt

BCRYPT_MAX_BYTES = 72
BCRYPT_COSTS = range(4, 17)
PBKDF2_ITERATIONS = range(1, 10_000_001)
_SHA256_BYTES = 32
_BCRYPT = re.compile(r"\$2[aby]\$(?P<cost>[0-9]{2})\$[./A-Za-z0-9]{53}")
_DJANGO = re.compile(r"pbkdf2_sha256\$(?P<iterations>[0-9]{1,8})\$(?P<salt>[^$]+)\$(?P<key>[^$]+)")
_PASSLIB = re.compile(
    r"\$pbkdf2-sha256\$(?P<iterations>[0-9]{1,8})\$(?P<salt>[./A-Za-z0-9]*)\$(?P<key>[./A-Za-z0-9]+)"
)


class LegacyScheme(Protocol):
    """One foreign hash format: how to recognise it, check it and verify a password with it."""

    name: str

    def recognizes(self, password_hash: str) -> bool:
        """Whether ``password_hash`` is in this format (by its prefix)."""
        ...

    def problem(self, password_hash: str) -> str | None:
        """Why a hash of this format cannot be used (malformed, cost out of bounds), or
        ``None`` when it can."""
        ...

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches (slow: run it in the hashing pool)."""
        ...


class BcryptScheme:
    """bcrypt (``$2b$``, ``$2a$``, ``$2y$``)."""

    name = "bcrypt"

    def recognizes(self, password_hash: str) -> bool:
        """Whether the hash starts like a bcrypt hash."""
        return password_hash.startswith(("$2b$", "$2a$", "$2y$"))

    def problem(self, password_hash: str) -> str | None:
        """What is wrong with a bcrypt hash, if anything."""
        match = _BCRYPT.fullmatch(password_hash)
        if match is None:
            return "is not a well-formed bcrypt hash"
        if int(match["cost"]) not in BCRYPT_COSTS:
            return f"has a bcrypt cost outside {BCRYPT_COSTS.start} to {BCRYPT_COSTS.stop - 1}"
        return None

    def verify(self, password_hash: str, password: str) -> bool:
        """bcrypt's own check on the first 72 bytes of the password."""
        if self.problem(password_hash) is not None:
            return False
        secret = password.encode("utf-8")[:BCRYPT_MAX_BYTES]
        try:
            return bcrypt.checkpw(secret, password_hash.encode("ascii"))
        except ValueError:
            return False


class _Pbkdf2Scheme:
    """PBKDF2-HMAC-SHA256 in a text format that subclasses parse."""

    name = ""
    prefix = ""
    _malformed = ""

    def recognizes(self, password_hash: str) -> bool:
        """Whether the hash starts with the format's prefix."""
        return password_hash.startswith(self.prefix)

    def problem(self, password_hash: str) -> str | None:
        """What is wrong with the hash, if anything."""
        parsed = self._parse(password_hash)
        return parsed if isinstance(parsed, str) else None

    def verify(self, password_hash: str, password: str) -> bool:
        """PBKDF2-HMAC-SHA256 of the password with the stored salt and iteration count."""
        parsed = self._parse(password_hash)
        if isinstance(parsed, str):
            return False
        iterations, salt, key = parsed
        derived = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
        return hmac.compare_digest(derived, key)

    def _parse(self, password_hash: str) -> tuple[int, bytes, bytes] | str:
        """(iterations, salt, key), or what is wrong."""
        parts = self._split(password_hash)
        if parts is None:
            return self._malformed
        iterations, salt, key = parts
        if iterations not in PBKDF2_ITERATIONS:
            return f"has an iteration count outside 1 to {PBKDF2_ITERATIONS.stop - 1:,}"
        if len(key) != _SHA256_BYTES:
            return f"must hold a {_SHA256_BYTES}-byte PBKDF2-SHA256 key"
        return iterations, salt, key

    def _split(self, password_hash: str) -> tuple[int, bytes, bytes] | None:
        raise NotImplementedError


class DjangoPbkdf2Scheme(_Pbkdf2Scheme):
    """Django's ``pbkdf2_sha256$iterations$salt$hash`` (salt as written, standard base64)."""

    name = "django-pbkdf2-sha256"
    prefix = "pbkdf2_sha256$"
    _malformed = "is not a well-formed Django pbkdf2_sha256 hash"

    def _split(self, password_hash: str) -> tuple[int, bytes, bytes] | None:
        match = _DJANGO.fullmatch(password_hash)
        if match is None:
            return None
        try:
            key = base64.b64decode(match["key"], validate=True)
            salt = match["salt"].encode("utf-8")
        except (binascii.Error, UnicodeEncodeError):
            return None
        return int(match["iterations"]), salt, key


class PasslibPbkdf2Scheme(_Pbkdf2Scheme):
    """passlib's ``$pbkdf2-sha256$rounds$salt$checksum`` (adapted base64)."""

    name = "passlib-pbkdf2-sha256"
    prefix = "$pbkdf2-sha256$"
    _malformed = "is not a well-formed passlib pbkdf2-sha256 hash"

    def _split(self, password_hash: str) -> tuple[int, bytes, bytes] | None:
        match = _PASSLIB.fullmatch(password_hash)
        if match is None:
            return None
        try:
            return int(match["iterations"]), _ab64_decode(match["salt"]), _ab64_decode(match["key"])
        except (binascii.Error, ValueError):
            return None


DEFAULT_LEGACY_SCHEMES: tuple[LegacyScheme, ...] = (
    BcryptScheme(),
    DjangoPbkdf2Scheme(),
    PasslibPbkdf2Scheme(),
)


def _ab64_decode(text: str) -> bytes:
    """passlib's adapted base64: standard base64 with "." for "+" and no padding."""
    standard = text.replace(".", "+")
    return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
