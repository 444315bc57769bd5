"""The rules a new password must meet, after NIST SP 800-63B-4 (section 3.1.1.2).

- at least ``min_length`` characters (15 by default; never fewer than 8), counted as Unicode
  code points after NFKC normalisation, so every script counts alike;
- at most ``max_bytes`` bytes of UTF-8 (1024 by default, enough for 64 characters of any
  script); a longer password is refused, never truncated;
- not on a blocklist of common or leaked passwords (compared NFKC-casefolded);
- not containing the account's username or e-mail address (nor its local part).

There are no composition rules (no "one digit, one symbol") and no periodic expiry: NIST
advises against both. Each violation carries a ``reason`` naming the rule, so that a client can
tell the rules apart without reading the description.
"""

from __future__ import annotations

from collections.abc import Collection

from usermgmt_server.domain.errors import FieldViolation
from usermgmt_server.domain.identifiers import identifier_key, normalize_password

PASSWORD_REQUIRED = "PASSWORD_REQUIRED"
PASSWORD_TOO_LONG = "PASSWORD_TOO_LONG"
PASSWORD_TOO_SHORT = "PASSWORD_TOO_SHORT"
PASSWORD_COMMON = "PASSWORD_COMMON"
PASSWORD_CONTAINS_USERNAME = "PASSWORD_CONTAINS_USERNAME"
PASSWORD_CONTAINS_EMAIL = "PASSWORD_CONTAINS_EMAIL"

DEFAULT_MIN_LENGTH = 15
DEFAULT_MAX_BYTES = 1024
# NIST: a verifier shall accept at least 64 characters; UTF-8 needs up to 4 bytes for each.
_MIN_ACCEPTED_CHARACTERS = 64
_MAX_UTF8_BYTES_PER_CHARACTER = 4
_LOWEST_MIN_LENGTH = 8
# Shorter usernames or local parts ("al", "x") occur by chance in good passwords.
_SHORTEST_CONTAINED_IDENTIFIER = 3


class PasswordPolicy:
    """Checks a new password; ``violations`` returns every broken rule at once.

    ``blocklist`` holds common passwords in any case or normal form; the policy compares their
    NFKC-casefolded forms. The domain receives the set ready-made (see
    ``adapters.security.common_passwords``) and knows nothing of where it comes from.
    """

    __slots__ = ("_blocklist", "max_bytes", "min_length")

    def __init__(
        self,
        min_length: int = DEFAULT_MIN_LENGTH,
        max_bytes: int = DEFAULT_MAX_BYTES,
        blocklist: Collection[str] = frozenset(),
    ) -> None:
        if min_length < _LOWEST_MIN_LENGTH:
            raise ValueError(
                f"the minimum password length must be at least {_LOWEST_MIN_LENGTH} characters"
            )
        lowest_max_bytes = _MAX_UTF8_BYTES_PER_CHARACTER * max(min_length, _MIN_ACCEPTED_CHARACTERS)
        if max_bytes < lowest_max_bytes:
            raise ValueError(
                f"the maximum password size must be at least {lowest_max_bytes} bytes, so that "
                f"{max(min_length, _MIN_ACCEPTED_CHARACTERS)} characters of any script fit"
            )
        self.min_length = min_length
        self.max_bytes = max_bytes
        self._blocklist = frozenset(identifier_key(entry) for entry in blocklist)

    def violations(
        self, password: str, *, field: str, username: str = "", email: str = ""
    ) -> list[FieldViolation]:
        """Every rule ``password`` breaks, reported against ``field``; empty when it is fine.

        ``username`` and ``email`` are the account's, when known; a password may not contain
        either (case-insensitively).
        """
        if not password:
            return [FieldViolation(field, "is required", PASSWORD_REQUIRED)]
        if len(password.encode("utf-8")) > self.max_bytes:
            return [
                FieldViolation(
                    field, f"must be at most {self.max_bytes} bytes in UTF-8", PASSWORD_TOO_LONG
                )
            ]
        found: list[FieldViolation] = []
        if len(normalize_password(password)) < self.min_length:
            found.append(
                FieldViolation(
                    field, f"must be at least {self.min_length} characters", PASSWORD_TOO_SHORT
                )
            )
        folded = identifier_key(password)
        if folded in self._blocklist:
            found.append(
                FieldViolation(
                    field,
                    "is too common; choose a password that is not on lists of leaked passwords",
                    PASSWORD_COMMON,
                )
            )
        if _contains(folded, username):
            found.append(
                FieldViolation(field, "must not contain the username", PASSWORD_CONTAINS_USERNAME)
            )
        if _contains(folded, email) or _contains(folded, email.rpartition("@")[0]):
            found.append(
                FieldViolation(
                    field, "must not contain the e-mail address", PASSWORD_CONTAINS_EMAIL
                )
            )
        return found


def _contains(folded_password: str, identifier: str) -> bool:
    key = identifier_key(identifier)
    return len(key) >= _SHORTEST_CONTAINED_IDENTIFIER and key in folded_password
