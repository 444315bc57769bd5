"""The common-password blocklist (adapters/security/common_passwords.py): zxcvbn's leaked
password list, folded the way the policy compares, loaded once."""

from __future__ import annotations

import subprocess
import sys

from usermgmt_server.adapters.security import common_passwords
from usermgmt_server.adapters.security.common_passwords import load_common_passwords
from usermgmt_server.domain.identifiers import identifier_key


def test_holds_the_whole_leaked_password_list() -> None:
    entries = load_common_passwords()
    assert isinstance(entries, frozenset)
    assert 29_000 <= len(entries) <= 30_000


def test_holds_the_well_known_entries() -> None:
    entries = load_common_passwords()
    for password in ("123456", "password", "qwerty", "iloveyou", "qwertyuiop", "trustno1"):
        assert password in entries


def test_holds_entries_long_enough_for_the_default_minimum() -> None:
    long_entries = {entry for entry in load_common_passwords() if len(entry) >= 15}
    assert {"passwordstandard", "qwertyuiop12345", "1234567890qwerty"} <= long_entries


def test_entries_are_folded_and_non_empty() -> None:
    for entry in load_common_passwords():
        assert entry
        assert entry == identifier_key(entry)
        assert entry == entry.strip()


def test_is_loaded_once() -> None:
    assert load_common_passwords() is load_common_passwords()


def test_accepts_the_list_as_one_comma_separated_string() -> None:
    raw = "Password,QWERTY, \uff44\uff52\uff41\uff47\uff4f\uff4e ,,123456"  # full-width
    assert common_passwords._folded(common_passwords._entries(raw)) == {
        "password",
        "qwerty",
        "dragon",
        "123456",
    }


def test_zxcvbn_stays_out_of_the_domain() -> None:
    code = (
        "import sys, usermgmt_server.domain.manager, usermgmt_server.domain.password_policy; "
        "print('zxcvbn' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
