"""ListUsers filter parsing (AIP-160 subset): accepted forms, canonical text and rejections."""

from __future__ import annotations

import pytest

from usermgmt_server.domain.errors import InvalidArgument
from usermgmt_server.domain.filters import FILTER_MAX, parse_filter
from usermgmt_server.domain.model import UserFilter, UserState


def fullwidth(text: str) -> str:
    """The full-width form of printable ASCII text ("A" -> U+FF21)."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def rejection(text: str) -> InvalidArgument:
    """The error for ``text``, checked to name exactly the field ``filter``."""
    with pytest.raises(InvalidArgument) as caught:
        parse_filter(text)
    error = caught.value
    assert [violation.field for violation in error.violations] == ["filter"]
    assert error.violations[0].description
    assert error.reason == "INVALID_ARGUMENT"
    return error


# --- accepted forms ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\t\n  "])
def test_empty_filter_has_no_conditions(text: str) -> None:
    assert parse_filter(text) == UserFilter()
    assert parse_filter(text).canonical == ""


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("state = USER_STATE_ACTIVE", UserState.ACTIVE),
        ("state = USER_STATE_PENDING_VERIFICATION", UserState.PENDING_VERIFICATION),
        ("state = USER_STATE_DISABLED", UserState.DISABLED),
    ],
)
def test_every_state_is_accepted(text: str, state: UserState) -> None:
    assert parse_filter(text) == UserFilter(state=state)


@pytest.mark.parametrize(
    "text",
    [
        "state=USER_STATE_ACTIVE",
        "state =USER_STATE_ACTIVE",
        "state= USER_STATE_ACTIVE",
        "  state   =   USER_STATE_ACTIVE  ",
        "\tstate\t=\tUSER_STATE_ACTIVE\n",
        "\nstate\n=\nUSER_STATE_ACTIVE\n",
        "\u3000state\u3000=\u3000USER_STATE_ACTIVE",  # ideographic space is whitespace too
    ],
)
def test_whitespace_around_tokens_is_optional(text: str) -> None:
    assert parse_filter(text) == UserFilter(state=UserState.ACTIVE)


@pytest.mark.parametrize(
    "text",
    ['email = "alice@example.com"', 'email="alice@example.com"', ' email =  "alice@example.com" '],
)
def test_email_condition(text: str) -> None:
    assert parse_filter(text) == UserFilter(email_key="alice@example.com")


def test_username_condition() -> None:
    assert parse_filter('username = "alice"') == UserFilter(username_key="alice")


@pytest.mark.parametrize(
    "text",
    [
        'state = USER_STATE_DISABLED AND email = "bob@example.com" AND username = "bob"',
        'username = "bob" AND email = "bob@example.com" AND state = USER_STATE_DISABLED',
        'username="bob"AND email="bob@example.com"AND state=USER_STATE_DISABLED',
        '  email = "bob@example.com"\nAND\tusername = "bob"   AND state = USER_STATE_DISABLED ',
    ],
)
def test_conditions_joined_by_and_in_any_order(text: str) -> None:
    assert parse_filter(text) == UserFilter(
        state=UserState.DISABLED, email_key="bob@example.com", username_key="bob"
    )


def test_two_conditions() -> None:
    assert parse_filter('state = USER_STATE_ACTIVE AND username = "carol"') == UserFilter(
        state=UserState.ACTIVE, username_key="carol"
    )


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"say \"hi\""', 'say "hi"'),
        (r'"back\\slash"', "back\\slash"),
        (r'"\\"', "\\"),
        (r'"\\\""', '\\"'),
        (r'"tail\\\\"', "tail\\\\"),
        (r'"AND state = USER_STATE_ACTIVE"', "and state = user_state_active"),
        ('""', ""),
    ],
)
def test_escapes_and_keywords_inside_strings(literal: str, value: str) -> None:
    assert parse_filter(f"username = {literal}") == UserFilter(username_key=value)


def test_email_and_username_values_are_case_insensitive_keys() -> None:
    assert parse_filter('email = "Alice@Example.COM"').email_key == "alice@example.com"
    assert parse_filter('username = "ALICE"').username_key == "alice"
    assert parse_filter(f'username = "{fullwidth("ALICE")}"').username_key == "alice"
    assert parse_filter('username = "Straße"').username_key == "strasse"


def test_field_names_and_keywords_are_case_sensitive() -> None:
    rejection("State = USER_STATE_ACTIVE")
    rejection('EMAIL = "a@example.com"')
    rejection('state = USER_STATE_ACTIVE and username = "a"')
    rejection("state = user_state_active")


def test_filter_of_exactly_the_maximum_length_is_accepted() -> None:
    text = "state = USER_STATE_ACTIVE".ljust(FILTER_MAX)
    assert len(text) == FILTER_MAX
    assert parse_filter(text) == UserFilter(state=UserState.ACTIVE)


# --- canonical form ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("state=USER_STATE_ACTIVE", "  state =  USER_STATE_ACTIVE "),
        ('email = "A@Example.com"', 'email="a@example.COM"'),
        ('username = "Alice"', f'username = "{fullwidth("alice")}"'),
        (
            'state = USER_STATE_ACTIVE AND email = "x@example.com" AND username = "x"',
            'username = "X" AND state = USER_STATE_ACTIVE AND email = "X@EXAMPLE.COM"',
        ),
    ],
)
def test_equal_filters_have_equal_canonical_form(first: str, second: str) -> None:
    assert parse_filter(first) == parse_filter(second)
    assert parse_filter(first).canonical == parse_filter(second).canonical


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("state = USER_STATE_ACTIVE", "state = USER_STATE_DISABLED"),
        ('email = "a@example.com"', 'username = "a@example.com"'),
        ('email = "a@example.com"', ""),
        ('username = "a"', 'username = "a" AND state = USER_STATE_ACTIVE'),
    ],
)
def test_different_filters_have_different_canonical_form(first: str, second: str) -> None:
    assert parse_filter(first).canonical != parse_filter(second).canonical


def test_canonical_form_cannot_be_forged_by_a_value() -> None:
    one_condition = parse_filter('email = "x@example.com&username=y"')
    two_conditions = parse_filter('email = "x@example.com" AND username = "y"')
    assert one_condition != two_conditions
    assert one_condition.canonical != two_conditions.canonical


# --- rejections --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ['name = "alice"', 'display_name = "Alice"', "user_id = abc", 'AND = "x"', "roles = admin"],
)
def test_unknown_field(text: str) -> None:
    rejection(text)


@pytest.mark.parametrize(
    "text",
    [
        "state = USER_STATE_ACTIVE AND state = USER_STATE_DISABLED",
        'email = "a@example.com" AND email = "b@example.com"',
        'username = "a" AND state = USER_STATE_ACTIVE AND username = "a"',
    ],
)
def test_duplicate_field(text: str) -> None:
    assert "more than once" in rejection(text).violations[0].description


@pytest.mark.parametrize(
    "text",
    [
        'state = USER_STATE_ACTIVE username = "a"',
        'email = "a@example.com" "b@example.com"',
        'state = USER_STATE_ACTIVE && username = "a"',
        'state = USER_STATE_ACTIVE, username = "a"',
    ],
)
def test_missing_and(text: str) -> None:
    rejection(text)


@pytest.mark.parametrize(
    "text",
    [
        'state = USER_STATE_ACTIVE OR username = "a"',
        'state = USER_STATE_ACTIVE || username = "a"',
        "state = USER_STATE_ACTIVE OR state = USER_STATE_DISABLED",
    ],
)
def test_or_is_not_supported(text: str) -> None:
    rejection(text)


@pytest.mark.parametrize(
    "text",
    [
        "state != USER_STATE_ACTIVE",
        "state == USER_STATE_ACTIVE",
        "state : USER_STATE_ACTIVE",
        'email:"a@example.com"',
        'email < "b"',
        'username > "a"',
        "state USER_STATE_ACTIVE",
        "NOT state = USER_STATE_ACTIVE",
        "-state = USER_STATE_ACTIVE",
    ],
)
def test_bad_operator(text: str) -> None:
    rejection(text)


@pytest.mark.parametrize(
    "text",
    [
        "email = alice",
        "email = alice@example.com",
        "username = alice",
        "email = 'alice@example.com'",
        'username = "alice',
        'username = alice"',
        'state = "USER_STATE_ACTIVE"',
    ],
)
def test_unquoted_or_badly_quoted_value(text: str) -> None:
    rejection(text)


@pytest.mark.parametrize(
    "value",
    ["USER_STATE_DELETED", "ACTIVE", "USER_STATE_", "USER_STATE_active", "USER_STATE_ACTIVEX"],
)
def test_unknown_state(value: str) -> None:
    description = rejection(f"state = {value}").violations[0].description
    assert "USER_STATE_ACTIVE" in description  # names the valid choices


def test_unspecified_state_is_rejected() -> None:
    description = rejection("state = USER_STATE_UNSPECIFIED").violations[0].description
    assert "USER_STATE_UNSPECIFIED" not in description.split("use one of", 1)[-1]


@pytest.mark.parametrize(
    "text",
    [
        "state = USER_STATE_ACTIVE AND",
        "state = USER_STATE_ACTIVE AND ",
        "AND state = USER_STATE_ACTIVE",
        "state = USER_STATE_ACTIVE )",
        "(state = USER_STATE_ACTIVE)",
        "state = USER_STATE_ACTIVE;",
        "state = USER_STATE_ACTIVE extra",
        'username = "a" "b"',
        "state =",
        "state",
        "=",
        "state = USER_STATE_ACTIVE AND AND",
        "state = USER_STATE_ACTIVE\x00",
    ],
)
def test_trailing_or_missing_pieces(text: str) -> None:
    rejection(text)


def test_oversized_filter() -> None:
    text = "state = USER_STATE_ACTIVE".ljust(FILTER_MAX + 1)
    assert f"{FILTER_MAX}" in rejection(text).violations[0].description


def test_oversized_filter_is_rejected_before_it_is_tokenised() -> None:
    # A huge run of garbage gets the size message, not a character-by-character scan error.
    assert "at most" in rejection("!" * (FILTER_MAX * 100)).violations[0].description
