"""The blocklist of common passwords for the password policy.

The list is zxcvbn's ``passwords`` frequency list: the 30,000 most frequent passwords of
leaked password sets, all lower-case ASCII. NIST SP 800-63B-4 asks verifiers to refuse
passwords found on such lists.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from usermgmt_server.domain.identifiers import identifier_key

_LIST_NAME = "passwords"


@functools.cache
def load_common_passwords() -> frozenset[str]:
    """The common passwords, NFKC-casefolded (loaded once per process, ~30,000 entries)."""
    # Imported here: the module is large, and only the composition root needs it.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return _folded(_entries(FREQUENCY_LISTS[_LIST_NAME]))


def _entries(raw: str | Iterable[str]) -> Iterable[str]:
    # The package ships each list as one comma-separated string that it splits on import.
    return raw.split(",") if isinstance(raw, str) else raw


def _folded(entries: Iterable[str]) -> frozenset[str]:
    return frozenset(key for key in (identifier_key(entry.strip()) for entry in entries) if key)
