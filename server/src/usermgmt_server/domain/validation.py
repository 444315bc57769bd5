"""Field rules for account data: each check returns the violations it finds."""

from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from usermgmt_server.domain.errors import FieldViolation, InvalidArgument

USERNAME_MIN = 3
USERNAME_MAX = 64
EMAIL_MAX = 254
DISPLAY_NAME_MAX = 200
LOGIN_MAX = EMAIL_MAX
PASSWORD_MAX_BYTES = 1024
REQUEST_ID_MAX = 128
ROLE_PATTERN = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
ROLES_MAX = 32
_USERNAME_PATTERN = re.compile(r"[\w.-]+")
_E164_PATTERN = re.compile(r"\+[1-9][0-9]{1,14}")


def check_username(value: str, field: str) -> list[FieldViolation]:
    """Username: 3 to 64 characters (after NFKC) of letters, digits, '.', '_' and '-'."""
    if not value:
        return [FieldViolation(field, "is required")]
    normalized = unicodedata.normalize("NFKC", value)
    if not USERNAME_MIN <= len(normalized) <= USERNAME_MAX:
        return [FieldViolation(field, f"must be {USERNAME_MIN} to {USERNAME_MAX} characters")]
    if not _USERNAME_PATTERN.fullmatch(normalized):
        return [FieldViolation(field, "may contain only letters, digits, '.', '_' and '-'")]
    return []


def check_email(value: str, field: str) -> list[FieldViolation]:
    """E-mail: a syntactically valid address of at most 254 characters (no DNS look-up)."""
    if not value:
        return [FieldViolation(field, "is required")]
    if len(value) > EMAIL_MAX:
        return [FieldViolation(field, f"must be at most {EMAIL_MAX} characters")]
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        return [FieldViolation(field, f"is not a valid e-mail address: {error}")]
    return []


def check_display_name(value: str, field: str) -> list[FieldViolation]:
    """Display name: optional, at most 200 characters, no control characters."""
    if len(value) > DISPLAY_NAME_MAX:
        return [FieldViolation(field, f"must be at most {DISPLAY_NAME_MAX} characters")]
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        return [FieldViolation(field, "must not contain control characters")]
    return []


def check_presented_password(
    value: str, field: str, max_bytes: int = PASSWORD_MAX_BYTES
) -> list[FieldViolation]:
    """A password presented for sign-in: present and within the byte limit (no minimum, so a
    password set under an older policy still works)."""
    if not value:
        return [FieldViolation(field, "is required")]
    if len(value.encode("utf-8")) > max_bytes:
        return [FieldViolation(field, f"must be at most {max_bytes} bytes in UTF-8")]
    return []


def check_login(value: str, field: str) -> list[FieldViolation]:
    """A login (username or e-mail) presented for sign-in."""
    if not value:
        return [FieldViolation(field, "is required")]
    if len(value) > LOGIN_MAX:
        return [FieldViolation(field, f"must be at most {LOGIN_MAX} characters")]
    return []


def check_request_id(value: str, field: str) -> list[FieldViolation]:
    """Idempotency key: optional, at most 128 printable ASCII characters."""
    if len(value) > REQUEST_ID_MAX:
        return [FieldViolation(field, f"must be at most {REQUEST_ID_MAX} characters")]
    if value and not (value.isascii() and value.isprintable()):
        return [FieldViolation(field, "must be printable ASCII")]
    return []


def check_user_id(value: str, field: str) -> list[FieldViolation]:
    """A user id in a request: present and of sane size."""
    if not value:
        return [FieldViolation(field, "is required")]
    if len(value) > 128 or not (value.isascii() and value.isprintable()):
        return [FieldViolation(field, "is not a valid user id")]
    return []


def check_roles(values: list[str], field: str) -> list[FieldViolation]:
    """Roles: at most 32, each lower-case like "admin" or "billing.viewer"."""
    if len(values) > ROLES_MAX:
        return [FieldViolation(field, f"must hold at most {ROLES_MAX} roles")]
    return [
        FieldViolation(f"{field}[{index}]", "must match [a-z][a-z0-9_.:-]{0,63}")
        for index, role in enumerate(values)
        if not ROLE_PATTERN.fullmatch(role)
    ]


def check_phone_number(value: str, field: str) -> list[FieldViolation]:
    """Phone number: empty (none) or E.164, a "+" and up to 15 digits."""
    if value and not _E164_PATTERN.fullmatch(value):
        return [FieldViolation(field, "must be in E.164 form, e.g. +447700900123")]
    return []


def raise_if_any(violations: list[FieldViolation]) -> None:
    """Raise ``InvalidArgument`` carrying every violation, if there is one."""
    if violations:
        raise InvalidArgument(violations)
