"""The password policy (domain/password_policy.py): each NIST SP 800-63B-4 rule at its
boundaries, Unicode handling, the blocklist, username and e-mail containment, and its reasons."""

from __future__ import annotations

import pytest

from usermgmt_server.adapters.security.common_passwords import load_common_passwords
from usermgmt_server.domain.errors import FieldViolation
from usermgmt_server.domain.password_policy import (
    PASSWORD_COMMON,
    PASSWORD_CONTAINS_EMAIL,
    PASSWORD_CONTAINS_USERNAME,
    PASSWORD_REQUIRED,
    PASSWORD_TOO_LONG,
    PASSWORD_TOO_SHORT,
    PasswordPolicy,
)

GOOD = "correct horse battery staple"
FI_LIGATURE = "\ufb01"  # "ﬁ": one character that NFKC turns into two ("fi")
E_ACUTE_DECOMPOSED = "e\u0301"  # two code points that NFKC composes into one "é"
EMOJI = "\U0001f600"  # four bytes of UTF-8
CJK = "\u732b"  # three bytes of UTF-8


def fullwidth(text: str) -> str:
    """The full-width form of printable ASCII text ("a" -> U+FF41)."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def reasons(violations: list[FieldViolation]) -> list[str]:
    return [violation.reason for violation in violations]


@pytest.fixture(scope="module")
def policy() -> PasswordPolicy:
    return PasswordPolicy(blocklist=load_common_passwords())


@pytest.fixture(scope="module")
def short_policy() -> PasswordPolicy:
    """Minimum 8, so that short entries of the real list reach the blocklist rule alone."""
    return PasswordPolicy(min_length=8, blocklist=load_common_passwords())


def test_a_long_unusual_password_passes(policy: PasswordPolicy) -> None:
    assert policy.violations(GOOD, field="password", username="alice", email="a@b.example") == []


def test_defaults_follow_nist() -> None:
    policy = PasswordPolicy()
    assert (policy.min_length, policy.max_bytes) == (15, 1024)


# -- presence and length -------------------------------------------------------------------


def test_empty_password_is_required_and_nothing_else(policy: PasswordPolicy) -> None:
    assert policy.violations("", field="new_password", username="alice") == [
        FieldViolation("new_password", "is required", PASSWORD_REQUIRED)
    ]


def test_exactly_the_minimum_passes(policy: PasswordPolicy) -> None:
    assert policy.violations("k" * 15, field="password") == []


def test_one_below_the_minimum_is_too_short(policy: PasswordPolicy) -> None:
    assert policy.violations("k" * 14, field="password") == [
        FieldViolation("password", "must be at least 15 characters", PASSWORD_TOO_SHORT)
    ]


@pytest.mark.parametrize("length", [8, 20])
def test_the_minimum_is_configurable(length: int) -> None:
    policy = PasswordPolicy(min_length=length)
    assert policy.violations("k" * length, field="p") == []
    assert reasons(policy.violations("k" * (length - 1), field="p")) == [PASSWORD_TOO_SHORT]


def test_multibyte_characters_count_as_one_character_each(policy: PasswordPolicy) -> None:
    assert policy.violations(EMOJI * 15, field="p") == []
    assert policy.violations(CJK * 15, field="p") == []
    assert reasons(policy.violations(EMOJI * 14, field="p")) == [PASSWORD_TOO_SHORT]


def test_length_is_counted_after_nfkc(policy: PasswordPolicy) -> None:
    # Eight ligatures are sixteen characters after NFKC; seven plus "x" are fifteen.
    assert policy.violations(FI_LIGATURE * 7 + "x", field="p") == []
    # Fifteen code points that compose into fourteen characters (13 * "k" + "e" + U+0301 + "k").
    composed = "k" * 13 + E_ACUTE_DECOMPOSED
    assert len(composed) == 15
    assert reasons(policy.violations(composed, field="p")) == [PASSWORD_TOO_SHORT]


def test_exactly_the_byte_limit_passes(policy: PasswordPolicy) -> None:
    password = "k" * 1024
    assert len(password.encode("utf-8")) == 1024
    assert policy.violations(password, field="p") == []


def test_one_byte_over_the_limit_is_too_long(policy: PasswordPolicy) -> None:
    assert policy.violations("k" * 1025, field="p") == [
        FieldViolation("p", "must be at most 1024 bytes in UTF-8", PASSWORD_TOO_LONG)
    ]


def test_the_byte_limit_counts_utf8_bytes_not_characters(policy: PasswordPolicy) -> None:
    assert policy.violations(EMOJI * 256, field="p") == []  # 256 characters, 1024 bytes
    assert reasons(policy.violations(EMOJI * 256 + "k", field="p")) == [PASSWORD_TOO_LONG]
    assert reasons(policy.violations(CJK * 342, field="p")) == [PASSWORD_TOO_LONG]  # 1026 bytes


def test_sixty_four_four_byte_characters_always_fit() -> None:
    policy = PasswordPolicy(max_bytes=256)
    assert policy.violations(EMOJI * 64, field="p") == []
    assert reasons(policy.violations(EMOJI * 65, field="p")) == [PASSWORD_TOO_LONG]


def test_a_long_password_is_refused_not_truncated(policy: PasswordPolicy) -> None:
    # A blocklisted prefix followed by padding must not be judged by its prefix only.
    long_password = "password" + "k" * 2000
    assert reasons(policy.violations(long_password, field="p", username="kkk")) == [
        PASSWORD_TOO_LONG
    ]


# -- blocklist -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["passwordstandard", "qwertyuiop12345", "1234567890qwerty", "111222333444555"],
)
def test_long_entries_of_the_leaked_list_are_refused(policy: PasswordPolicy, password: str) -> None:
    assert len(password) >= 15
    assert policy.violations(password, field="password") == [
        FieldViolation(
            "password",
            "is too common; choose a password that is not on lists of leaked passwords",
            PASSWORD_COMMON,
        )
    ]


@pytest.mark.parametrize("password", ["password", "12345678", "qwertyuiop", "iloveyou"])
def test_short_entries_of_the_leaked_list_are_refused(
    short_policy: PasswordPolicy, password: str
) -> None:
    assert reasons(short_policy.violations(password, field="p")) == [PASSWORD_COMMON]


def test_the_blocklist_ignores_case(policy: PasswordPolicy) -> None:
    assert reasons(policy.violations("PassWordStandard", field="p")) == [PASSWORD_COMMON]


def test_full_width_forms_count_and_match_the_blocklist(
    policy: PasswordPolicy, short_policy: PasswordPolicy
) -> None:
    assert reasons(policy.violations(fullwidth("passwordstandard"), field="p")) == [PASSWORD_COMMON]
    assert reasons(short_policy.violations(fullwidth("PASSWORD"), field="p")) == [PASSWORD_COMMON]
    # Full-width characters are three bytes each but one character each.
    assert policy.violations(fullwidth("zebra-canoe-42!"), field="p") == []


def test_the_blocklist_is_matched_whole_not_as_a_substring(policy: PasswordPolicy) -> None:
    assert policy.violations("my password is long enough", field="p") == []


def test_blocklist_entries_are_normalised_by_the_policy() -> None:
    policy = PasswordPolicy(blocklist=["Tr0ub4dor&3-horse", fullwidth("staplebattery99x")])
    assert reasons(policy.violations("tr0ub4dor&3-HORSE", field="p")) == [PASSWORD_COMMON]
    assert reasons(policy.violations("STAPLEBATTERY99X", field="p")) == [PASSWORD_COMMON]


def test_no_blocklist_means_no_blocklist_rule() -> None:
    assert PasswordPolicy(min_length=8).violations("password", field="p") == []


# -- username and e-mail -------------------------------------------------------------------


def test_password_containing_the_username_is_refused(policy: PasswordPolicy) -> None:
    assert policy.violations("my-name-is-Alice-1987", field="p", username="alice") == [
        FieldViolation("p", "must not contain the username", PASSWORD_CONTAINS_USERNAME)
    ]


def test_username_containment_ignores_case_and_width(policy: PasswordPolicy) -> None:
    password = fullwidth("my-name-is-") + "ALICE-1987"
    assert reasons(policy.violations(password, field="p", username="Alice")) == [
        PASSWORD_CONTAINS_USERNAME
    ]


def test_usernames_shorter_than_three_characters_are_not_checked(policy: PasswordPolicy) -> None:
    assert policy.violations("the-al-of-my-dreams", field="p", username="al") == []
    assert reasons(policy.violations("the-ali-of-my-dreams", field="p", username="ali")) == [
        PASSWORD_CONTAINS_USERNAME
    ]


def test_password_containing_the_email_local_part_is_refused(policy: PasswordPolicy) -> None:
    assert policy.violations(
        "long-live-jsmith-forever", field="p", email="JSmith@mail.example"
    ) == [FieldViolation("p", "must not contain the e-mail address", PASSWORD_CONTAINS_EMAIL)]


def test_password_containing_the_whole_email_is_refused(policy: PasswordPolicy) -> None:
    # The local part is too short to be checked on its own, but the whole address is.
    assert reasons(policy.violations("xy@mail.example!!", field="p", email="xy@mail.example")) == [
        PASSWORD_CONTAINS_EMAIL
    ]
    assert policy.violations("xy-and-a-long-tail", field="p", email="xy@mail.example") == []


def test_the_domain_alone_is_not_refused(policy: PasswordPolicy) -> None:
    assert policy.violations("mail.example rocks", field="p", email="jsmith@mail.example") == []


def test_empty_username_and_email_are_ignored(policy: PasswordPolicy) -> None:
    assert policy.violations(GOOD, field="p", username="", email="") == []


# -- several at once -----------------------------------------------------------------------


def test_every_broken_rule_is_reported_at_once(short_policy: PasswordPolicy) -> None:
    policy = PasswordPolicy(blocklist=["alice@mail.example"])
    found = policy.violations(
        "Alice@mail.example", field="new_password", username="alice", email="alice@mail.example"
    )
    assert reasons(found) == [
        PASSWORD_COMMON,
        PASSWORD_CONTAINS_USERNAME,
        PASSWORD_CONTAINS_EMAIL,
    ]
    assert {violation.field for violation in found} == {"new_password"}
    found = short_policy.violations("Password", field="p", username="pass", email="word@x.example")
    assert reasons(found) == [PASSWORD_COMMON, PASSWORD_CONTAINS_USERNAME, PASSWORD_CONTAINS_EMAIL]


def test_short_common_and_containing_the_username(policy: PasswordPolicy) -> None:
    assert reasons(policy.violations("dragon", field="p", username="dragon")) == [
        PASSWORD_TOO_SHORT,
        PASSWORD_COMMON,
        PASSWORD_CONTAINS_USERNAME,
    ]


def test_descriptions_are_short_and_human(policy: PasswordPolicy) -> None:
    found = policy.violations("dragon", field="p", username="dragon", email="dragon@x.example")
    for violation in found:
        assert violation.description[0].islower()
        assert len(violation.description) <= 80
        assert "dragon" not in violation.description


def test_there_are_no_composition_rules(policy: PasswordPolicy) -> None:
    assert policy.violations("all lower case words only", field="p") == []
    assert policy.violations("k" * 40, field="p") == []


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("min_length", [7, 0, -1])
def test_a_minimum_below_eight_is_refused(min_length: int) -> None:
    with pytest.raises(ValueError, match="at least 8"):
        PasswordPolicy(min_length=min_length)


def test_a_minimum_of_eight_is_allowed() -> None:
    assert PasswordPolicy(min_length=8).min_length == 8


@pytest.mark.parametrize("max_bytes", [255, 64, 0])
def test_a_byte_limit_below_sixty_four_wide_characters_is_refused(max_bytes: int) -> None:
    with pytest.raises(ValueError, match="256 bytes"):
        PasswordPolicy(max_bytes=max_bytes)


def test_the_byte_limit_must_fit_the_minimum_in_any_script() -> None:
    with pytest.raises(ValueError, match="400 bytes"):
        PasswordPolicy(min_length=100, max_bytes=399)
    assert PasswordPolicy(min_length=100, max_bytes=400).max_bytes == 400
