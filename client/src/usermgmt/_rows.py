"""Import rows read from CSV or JSON Lines, and the export format that reads back as rows.

A row names an account with the fields of ``usermgmt.v1.ImportedUser``: ``username``,
``email``, ``display_name``, ``roles`` (a JSON list, or names separated by spaces, commas or
semicolons), ``email_verified`` (true/false, yes/no, 1/0), and at most one of ``password`` and
``password_hash``. A row with neither is an invitation (``invite``, which may also be given as
true); empty values count as absent. CSV files start with a header naming their columns; an
unknown column is refused before any row is read, so that a misspelt ``password`` column cannot
turn every row into an invitation. In JSON Lines, each non-blank line is one object.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from usermgmt.v1 import user_pb2, user_service_pb2

ROW_FIELDS = (
    "username",
    "email",
    "display_name",
    "roles",
    "email_verified",
    "password",
    "password_hash",
    "invite",
)
#: What ``usermgmt export`` writes for each account: every field but the credential, so that
#: importing an export elsewhere invites each account.
EXPORT_FIELDS = ("username", "email", "display_name", "roles", "email_verified")
FORMATS = ("csv", "jsonl")
_ROLE_SEPARATORS = re.compile(r"[\s,;]+")
_TRUE, _FALSE = {"true", "yes", "1"}, {"false", "no", "0", ""}


class RowError(ValueError):
    """A row (or a whole file, for a bad CSV header) that cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A row read from ``line`` of its source: the account, or why it could not be read."""

    line: int
    user: user_service_pb2.ImportedUser | None
    error: str = ""


def format_of(name: str) -> str:
    """``csv`` or ``jsonl``, from the name's extension (``.csv``; ``.jsonl``, ``.ndjson``)."""
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise RowError(f"cannot tell the format of {name!r} from its name: give --format csv|jsonl")


def read_rows(stream: TextIO, row_format: str) -> Iterator[SourceRow]:
    """The rows of a text stream in ``row_format``; raises ``RowError`` for a bad CSV header."""
    if row_format == "csv":
        return _read_csv(stream)
    return _read_jsonl(stream)


def imported_user(fields: Mapping[str, Any]) -> user_service_pb2.ImportedUser:
    """The ``ImportedUser`` of one row's fields; raises ``RowError`` when they make no row."""
    unknown = sorted(set(fields) - set(ROW_FIELDS))
    if unknown:
        raise RowError(f"unknown field {unknown[0]!r}")
    password = _text(fields, "password")
    password_hash = _text(fields, "password_hash")
    invite = fields.get("invite")
    invited = _flag(invite, "invite") if invite is not None else not (password or password_hash)
    if (bool(password) + bool(password_hash) + invited) > 1:
        raise RowError("give only one of password, password_hash and invite")
    user = user_service_pb2.ImportedUser(
        username=_text(fields, "username"),
        email=_text(fields, "email"),
        display_name=_text(fields, "display_name"),
        roles=_roles(fields.get("roles")),
        email_verified=_flag(fields.get("email_verified"), "email_verified"),
    )
    if password:
        user.password = password
    elif password_hash:
        user.password_hash = password_hash
    elif invited:
        user.invite.SetInParent()
    return user


def export_record(user: user_pb2.User) -> dict[str, Any]:
    """The export row of an account (``EXPORT_FIELDS``)."""
    return {
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "roles": list(user.roles),
        "email_verified": user.email_verified,
    }


class RowWriter:
    """Writes export rows as JSON Lines or as CSV with a header."""

    def __init__(self, stream: TextIO, row_format: str) -> None:
        self._stream = stream
        self._csv = None
        if row_format == "csv":
            self._csv = csv.writer(stream, lineterminator="\n")
            self._csv.writerow(EXPORT_FIELDS)

    def write(self, record: Mapping[str, Any]) -> None:
        """One row."""
        if self._csv is None:
            self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        self._csv.writerow([_cell(record[name]) for name in EXPORT_FIELDS])


def _cell(value: object) -> object:
    if isinstance(value, list):
        return " ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _read_jsonl(lines: Iterable[str]) -> Iterator[SourceRow]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except json.JSONDecodeError as error:
            yield SourceRow(number, None, f"not JSON: {error.msg}")
            continue
        if not isinstance(fields, dict):
            yield SourceRow(number, None, "not a JSON object")
            continue
        yield _row(number, fields)


def _read_csv(stream: TextIO) -> Iterator[SourceRow]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return iter(())
    columns = [name.strip().lower() for name in header]
    unknown = [name for name in columns if name not in ROW_FIELDS]
    if unknown:
        raise RowError(f"unknown column {unknown[0]!r} (columns: {', '.join(ROW_FIELDS)})")
    if len(set(columns)) != len(columns):
        raise RowError("a column is named twice in the header")
    return _csv_rows(reader, columns)


def _csv_rows(reader: Any, columns: list[str]) -> Iterator[SourceRow]:
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        if len(values) > len(columns):
            yield SourceRow(reader.line_num, None, "more values than columns")
            continue
        fields = {name: value for name, value in zip(columns, values, strict=False) if value}
        yield _row(reader.line_num, fields)


def _row(line: int, fields: Mapping[str, Any]) -> SourceRow:
    try:
        return SourceRow(line, imported_user(fields))
    except RowError as error:
        return SourceRow(line, None, str(error))


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowError(f"{name} must be text")
    return value


def _roles(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [role for role in _ROLE_SEPARATORS.split(value) if role]
    if isinstance(value, list) and all(isinstance(role, str) for role in value):
        return value
    raise RowError("roles must be a list of names or text")


def _flag(value: object, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise RowError(f"{name} must be true or false")
