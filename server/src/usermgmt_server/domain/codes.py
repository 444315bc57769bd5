"""One-time codes: generation, keyed hashing and constant-time comparison."""

from __future__ import annotations

import hmac
import re
import secrets

from usermgmt_server.domain.errors import FieldViolation, InvalidArgument
from usermgmt_server.domain.model import CodePurpose
from usermgmt_server.domain.ports import KeyedHasher

CODE_DIGITS = 6
_CODE_PATTERN = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")


def new_code() -> str:
    """A uniformly random 6-digit code."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(hasher: KeyedHasher, user_id: str, purpose: CodePurpose, code: str) -> str:
    """The stored form of a code, bound to its account and purpose."""
    return hasher.digest("one-time-code", f"{user_id}\n{purpose.value}\n{code}".encode())


def codes_match(stored_hash: str, candidate_hash: str) -> bool:
    """Constant-time comparison of two code hashes."""
    return hmac.compare_digest(stored_hash, candidate_hash)


def check_code_format(code: str, field: str = "code") -> None:
    """Reject anything that is not six digits before touching storage."""
    if not _CODE_PATTERN.fullmatch(code):
        raise InvalidArgument([FieldViolation(field, f"must be {CODE_DIGITS} digits")])
