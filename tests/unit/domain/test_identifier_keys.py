"""Normalised identifiers (domain/identifiers.py): the keys under which usernames and e-mail
addresses are unique, and the form in which passwords are hashed."""

from __future__ import annotations

import unicodedata

import pytest

from usermgmt_server.domain.identifiers import identifier_key, normalize_password


def fullwidth(text: str) -> str:
    """The full-width form of printable ASCII text ("A" -> U+FF21)."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("alice", "alice"),
        ("ALICE", "alice"),
        ("aLiCe", "alice"),
        ("Alice@Example.COM", "alice@example.com"),
        (fullwidth("ALICE"), "alice"),  # full-width capitals
        (fullwidth("alice"), "alice"),
        (fullwidth("alice@example.com"), "alice@example.com"),  # full-width "@" too
        ("Straße", "strasse"),  # ß folds to ss
        ("STRASSE", "strasse"),
        ("\u1e9e", "ss"),  # capital sharp s
        ("\ufb01x", "fix"),  # ligature "ﬁ"
        ("\u212a", "k"),  # Kelvin sign
        ("\u212b", "å"),  # Angstrom sign
        ("A\u030a", "å"),  # decomposed A + ring above
        ("ΣΊΣΥΦΟΣ", "σίσυφοσ"),  # final and medial sigma fold alike
        ("σίσυφος", "σίσυφοσ"),
        ("\u01c5", "dž"),  # title-case digraph
        ("x\u00b2", "x2"),  # superscript two
    ],
)
def test_identifier_key(spelling: str, key: str) -> None:
    assert identifier_key(spelling) == key


@pytest.mark.parametrize(
    "names",
    [
        ["alice", "Alice", "ALICE", fullwidth("Alice")],
        ["straße", "STRASSE", "Strasse", "STRAẞE"],
        ["zoë", "zoe\u0308", "ZOË", "ZOE\u0308"],
    ],
)
def test_spellings_of_one_name_share_a_key(names: list[str]) -> None:
    assert len({identifier_key(name) for name in names}) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alice", "alice1"),
        ("alice", "alíce"),
        ("alice", "\u0430lice"),  # Cyrillic small a: a confusable, not a spelling of "a"
        ("i", "\u0130"),  # dotted capital I folds to "i" + combining dot, not to "i"
        ("alice", " alice"),  # keys do not trim; validation rejects spaces in usernames
    ],
)
def test_different_names_keep_different_keys(first: str, second: str) -> None:
    assert identifier_key(first) != identifier_key(second)


@pytest.mark.parametrize(
    "value",
    ["Alice", fullwidth("ALICE"), "Straße", "\u0130stanbul", "\u1e9e", "\ufb03", "ǅungla", "ΣΑΣ"],
)
def test_identifier_key_is_stable(value: str) -> None:
    key = identifier_key(value)
    assert identifier_key(key) == key
    assert unicodedata.is_normalized("NFKC", key)
    assert key.casefold() == key


def test_password_normalisation_is_nfkc_without_case_folding() -> None:
    assert normalize_password("Secret") == "Secret"
    assert normalize_password("e\u0301t\u00e9") == "\u00e9t\u00e9"
    assert normalize_password(fullwidth("Pass")) == "Pass"
    assert normalize_password("\ufb01") == "fi"
    assert normalize_password("Straße") == "Straße"
    assert normalize_password(" pad ") == " pad "
