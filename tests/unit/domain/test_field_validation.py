"""Field rules of account data (domain/validation.py): limits at their boundaries, UTF-8 byte
limits of passwords, NFKC handling, control characters and the role pattern."""

from __future__ import annotations

import pytest

from usermgmt_server.domain.errors import FieldViolation, InvalidArgument
from usermgmt_server.domain.validation import (
    DISPLAY_NAME_MAX,
    EMAIL_MAX,
    LOGIN_MAX,
    PASSWORD_MAX_BYTES,
    REQUEST_ID_MAX,
    ROLES_MAX,
    USERNAME_MAX,
    USERNAME_MIN,
    check_display_name,
    check_email,
    check_login,
    check_presented_password,
    check_request_id,
    check_roles,
    check_user_id,
    check_username,
    raise_if_any,
)

FI_LIGATURE = "\ufb01"  # "ﬁ", NFKC "fi": one character that normalises to two
E_ACUTE_DECOMPOSED = "e\u0301"  # two code points that NFKC composes into one "é"


def fullwidth(text: str) -> str:
    """The full-width form of printable ASCII text ("a" -> U+FF41)."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def fields(violations: list[FieldViolation]) -> list[str]:
    return [violation.field for violation in violations]


def test_documented_limits() -> None:
    assert (USERNAME_MIN, USERNAME_MAX) == (3, 64)
    assert EMAIL_MAX == LOGIN_MAX == 254
    assert DISPLAY_NAME_MAX == 200
    assert PASSWORD_MAX_BYTES == 1024
    assert REQUEST_ID_MAX == 128
    assert ROLES_MAX == 32


# --- username ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "a" * USERNAME_MAX,
        "alice.smith",
        "alice_smith",
        "alice-smith",
        "Alice2",
        "123",
        "zoë",
        "Ñandú",
        "δοκιμή",
        "用户名",
    ],
)
def test_username_accepted(value: str) -> None:
    assert check_username(value, "username") == []


@pytest.mark.parametrize("value", ["ab", "a" * (USERNAME_MAX + 1)])
def test_username_length_limits(value: str) -> None:
    assert check_username(value, "username") == [
        FieldViolation("username", "must be 3 to 64 characters")
    ]


def test_username_required() -> None:
    assert check_username("", "username") == [FieldViolation("username", "is required")]


@pytest.mark.parametrize(
    "value",
    [
        "al ice",
        "alice@example.com",
        "alice!",
        "alice\n",
        "ali\tce",
        "ali\x00ce",
        "ali\u200bce",  # zero-width space
        "al/ice",
        "alice+tag",
    ],
)
def test_username_characters(value: str) -> None:
    assert fields(check_username(value, "user.username")) == ["user.username"]


def test_username_length_is_counted_after_nfkc() -> None:
    # Two characters, three after NFKC: long enough.
    assert check_username("a" + FI_LIGATURE, "username") == []
    # Three code points, two characters after NFKC: too short.
    assert fields(check_username("a" + E_ACUTE_DECOMPOSED, "username")) == ["username"]
    # 64 ligatures are 128 characters after NFKC: too long.
    assert fields(check_username(FI_LIGATURE * USERNAME_MAX, "username")) == ["username"]
    # 65 code points that compose into 33 characters: fine.
    assert check_username("a" + E_ACUTE_DECOMPOSED * 32, "username") == []


def test_username_full_width_letters_are_letters() -> None:
    assert check_username(fullwidth("alice"), "username") == []


# --- e-mail ------------------------------------------------------------------------------------


def longest_valid_email() -> str:
    local = "a" * 64
    domain = ".".join(["b" * 63, "c" * 63, "d" * 57, "com"])
    address = f"{local}@{domain}"
    assert len(address) == EMAIL_MAX
    return address


@pytest.mark.parametrize(
    "value",
    ["alice@example.com", "Alice.Smith+tag@Example.COM", "a@b.co", "zoë@example.com"],
)
def test_email_accepted(value: str) -> None:
    assert check_email(value, "email") == []


def test_email_at_the_length_limit() -> None:
    assert check_email(longest_valid_email(), "email") == []


def test_email_over_the_length_limit() -> None:
    assert check_email("a" + longest_valid_email(), "email") == [
        FieldViolation("email", "must be at most 254 characters")
    ]


def test_email_required() -> None:
    assert check_email("", "email") == [FieldViolation("email", "is required")]


@pytest.mark.parametrize(
    "value",
    [
        "alice",
        "alice@",
        "@example.com",
        "alice@@example.com",
        "alice@example",
        "al ice@example.com",
    ],
)
def test_email_syntax(value: str) -> None:
    [violation] = check_email(value, "user.email")
    assert violation.field == "user.email"
    assert violation.description.startswith("is not a valid e-mail address")


# --- display name ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["", "Alice", "x" * DISPLAY_NAME_MAX, "é" * DISPLAY_NAME_MAX, "Zoë 🙂", "Jean-Luc O'Neil"],
)
def test_display_name_accepted(value: str) -> None:
    assert check_display_name(value, "display_name") == []


def test_display_name_over_the_limit() -> None:
    assert check_display_name("x" * (DISPLAY_NAME_MAX + 1), "display_name") == [
        FieldViolation("display_name", "must be at most 200 characters")
    ]


@pytest.mark.parametrize("control", ["\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9f"])
def test_display_name_control_characters(control: str) -> None:
    assert check_display_name(f"Ali{control}ce", "display_name") == [
        FieldViolation("display_name", "must not contain control characters")
    ]


# --- passwords ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("x" * PASSWORD_MAX_BYTES, True),
        ("x" * (PASSWORD_MAX_BYTES + 1), False),
        ("é" * 512, True),  # 512 characters, 1024 bytes
        ("é" * 513, False),  # 513 characters, 1026 bytes
        ("€" * 341, True),  # 1023 bytes
        ("€" * 342, False),  # 1026 bytes, though only 342 characters
        ("😀" * 256, True),  # 1024 bytes
        ("😀" * 257, False),
        ("x" * 1023 + "é", False),  # 1024 characters, 1025 bytes
    ],
)
def test_password_limit_is_in_utf8_bytes(password: str, accepted: bool) -> None:
    too_long = FieldViolation("password", "must be at most 1024 bytes in UTF-8")
    assert check_presented_password(password, "password") == ([] if accepted else [too_long])


def test_passwords_are_required() -> None:
    assert check_presented_password("", "password") == [FieldViolation("password", "is required")]


def test_presented_password_has_no_minimum_length() -> None:
    # A password set under an older, shorter minimum can still be presented.
    assert check_presented_password("x", "password") == []


def test_presented_password_limit_is_configurable() -> None:
    assert check_presented_password("x" * 16, "password", 16) == []
    assert check_presented_password("x" * 17, "password", 16) == [
        FieldViolation("password", "must be at most 16 bytes in UTF-8")
    ]


# --- login, request id, user id ----------------------------------------------------------------


def test_login_limits() -> None:
    assert check_login("alice", "login") == []
    assert check_login("x" * LOGIN_MAX, "login") == []
    assert check_login("x" * (LOGIN_MAX + 1), "login") == [
        FieldViolation("login", "must be at most 254 characters")
    ]
    assert check_login("", "login") == [FieldViolation("login", "is required")]


@pytest.mark.parametrize("value", ["", "r-1", "x" * REQUEST_ID_MAX, "a b~!", "0f8fad5b-d9cb"])
def test_request_id_accepted(value: str) -> None:
    assert check_request_id(value, "request_id") == []


@pytest.mark.parametrize(
    ("value", "description"),
    [
        ("x" * (REQUEST_ID_MAX + 1), "must be at most 128 characters"),
        ("r\n1", "must be printable ASCII"),
        ("r\x001", "must be printable ASCII"),
        ("réq", "must be printable ASCII"),
        (fullwidth("req"), "must be printable ASCII"),
    ],
)
def test_request_id_rejected(value: str, description: str) -> None:
    assert check_request_id(value, "request_id") == [FieldViolation("request_id", description)]


@pytest.mark.parametrize("value", ["me", "u_123", "x" * 128])
def test_user_id_accepted(value: str) -> None:
    assert check_user_id(value, "user_id") == []


@pytest.mark.parametrize(
    ("value", "description"),
    [
        ("", "is required"),
        ("x" * 129, "is not a valid user id"),
        ("u\n1", "is not a valid user id"),
        ("ü", "is not a valid user id"),
    ],
)
def test_user_id_rejected(value: str, description: str) -> None:
    assert check_user_id(value, "user_id") == [FieldViolation("user_id", description)]


# --- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "roles",
    [
        [],
        ["admin"],
        ["billing.viewer", "team:ops", "a-b_c", "x9"],
        ["a"],
        ["a" + "b" * 63],
        [f"role{index}" for index in range(ROLES_MAX)],
    ],
)
def test_roles_accepted(roles: list[str]) -> None:
    assert check_roles(roles, "roles") == []


@pytest.mark.parametrize(
    "role",
    [
        "",
        "Admin",
        "ADMIN",
        "9lives",
        "_admin",
        ".admin",
        "adm in",
        "admin\n",
        "admin/x",
        "a" + "b" * 64,
        "admín",
        fullwidth("admin"),
    ],
)
def test_role_pattern(role: str) -> None:
    assert check_roles(["admin", role], "user.roles") == [
        FieldViolation("user.roles[1]", "must match [a-z][a-z0-9_.:-]{0,63}")
    ]


def test_every_bad_role_is_reported() -> None:
    assert fields(check_roles(["Bad", "ok", "", "also bad"], "roles")) == [
        "roles[0]",
        "roles[2]",
        "roles[3]",
    ]


def test_too_many_roles() -> None:
    assert check_roles(["admin"] * (ROLES_MAX + 1), "roles") == [
        FieldViolation("roles", "must hold at most 32 roles")
    ]


# --- raising -----------------------------------------------------------------------------------


def test_raise_if_any_carries_every_violation() -> None:
    raise_if_any([])
    violations = check_username("", "username") + check_email("nope", "email")
    with pytest.raises(InvalidArgument) as caught:
        raise_if_any(violations)
    assert caught.value.violations == violations
    assert "username: is required" in caught.value.message
