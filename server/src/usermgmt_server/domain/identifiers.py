"""Normalisation of usernames, e-mail addresses and passwords."""

from __future__ import annotations

import unicodedata


def identifier_key(value: str) -> str:
    """The form under which usernames and e-mail addresses are unique and looked up.

    NFKC, case-folded and NFKC again (Unicode's NFKC_Casefold idea), so that "ALICE",
    "alice" and its full-width form are the same name.
    """
    folded = unicodedata.normalize("NFKC", value).casefold()
    return unicodedata.normalize("NFKC", folded)


def normalize_password(password: str) -> str:
    """NFKC form of a password, so that equivalent spellings of the same text verify."""
    return unicodedata.normalize("NFKC", password)
