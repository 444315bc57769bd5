"""How the CLI shows users: aligned text for people, JSON for programs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Sequence
from typing import Any, TextIO

from google.protobuf import json_format

from usermgmt.v1 import user_pb2

TABLE_COLUMNS = ("USER_ID", "USERNAME", "EMAIL", "STATE", "ROLES")


def user_dict(user: user_pb2.User) -> dict[str, Any]:
    """``user`` as JSON-ready data with the proto's field names (enums by name)."""
    return json_format.MessageToDict(user, preserving_proto_field_name=True)


def write_json(stream: TextIO, value: Any) -> None:
    """``value`` as indented JSON and a newline."""
    stream.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def write_user(stream: TextIO, user: user_pb2.User) -> None:
    """One user as ``name  value`` lines (empty optional fields left out)."""
    rows = [
        ("user_id", user.user_id),
        ("username", user.username),
        ("email", user.email),
        ("display_name", user.display_name),
        ("state", _enum_name(user, "state")),
        ("email_verified", "yes" if user.email_verified else "no"),
        ("roles", ", ".join(user.roles)),
        ("pending_email", user.pending_email),
        ("phone_number", user.phone_number),
        ("notification_channel", _enum_name(user, "notification_channel")),
        ("password_change_required", "yes" if user.password_change_required else ""),
        ("create_time", _time(user, "create_time")),
        ("update_time", _time(user, "update_time")),
        ("etag", user.etag),
    ]
    shown = [(name, value) for name, value in rows if value]
    width = max(len(name) for name, _ in shown)
    for name, value in shown:
        stream.write(f"{name:<{width}}  {value}".rstrip() + "\n")


def user_row(user: user_pb2.User) -> tuple[str, ...]:
    """The table cells of one user."""
    return (
        user.user_id,
        user.username,
        user.email,
        _enum_name(user, "state"),
        ",".join(user.roles),
    )


class TableWriter:
    """Rows streamed as an aligned table; widths are fixed by the first batch of rows, and a
    longer cell later simply pushes its line wider."""

    def __init__(self, stream: TextIO, header: Sequence[str]) -> None:
        self._stream = stream
        self._header = tuple(header)
        self._widths: list[int] | None = None
        self.rows = 0

    def write(self, rows: Sequence[Sequence[str]]) -> None:
        """Write a batch of rows (the header goes out with the first batch)."""
        if self._widths is None:
            self._widths = [
                max([len(self._header[i])] + [len(row[i]) for row in rows])
                for i in range(len(self._header))
            ]
            self._line(self._header)
        for row in rows:
            self._line(row)
            self.rows += 1

    def _line(self, cells: Sequence[str]) -> None:
        assert self._widths is not None
        text = "  ".join(
            f"{cell:<{width}}" for cell, width in zip(cells, self._widths, strict=True)
        )
        self._stream.write(text.rstrip() + "\n")


async def write_json_array(stream: TextIO, items: AsyncIterable[dict[str, Any]]) -> int:
    """A JSON array written item by item as ``items`` arrive; returns how many were written."""
    count = 0
    stream.write("[")
    async for item in items:
        stream.write(("," if count else "") + "\n  " + json.dumps(item, ensure_ascii=False))
        stream.flush()
        count += 1
    stream.write("\n]\n" if count else "]\n")
    return count


def _enum_name(user: user_pb2.User, field: str) -> str:
    descriptor = user.DESCRIPTOR.fields_by_name[field].enum_type
    value = descriptor.values_by_number.get(getattr(user, field))
    if value is None or value.number == 0:
        return ""
    return value.name.removeprefix(_prefix(descriptor.name))


def _prefix(enum_name: str) -> str:
    # UserState -> USER_STATE_, NotificationChannel -> NOTIFICATION_CHANNEL_
    snake = "".join(f"_{ch}" if ch.isupper() else ch for ch in enum_name).lstrip("_")
    return snake.upper() + "_"


def _time(user: user_pb2.User, field: str) -> str:
    if not user.HasField(field):
        return ""
    return getattr(user, field).ToDatetime().isoformat(timespec="seconds") + "Z"
