"""Reading import rows from CSV and JSON Lines, and writing export rows that read back."""

from __future__ import annotations

import io

import pytest

from usermgmt._rows import (
    RowError,
    RowWriter,
    export_record,
    format_of,
    imported_user,
    read_rows,
)
from usermgmt.v1 import user_pb2


def test_fields_become_an_imported_user() -> None:
    user = imported_user(
        {
            "username": "ada",
            "email": "ada@example.com",
            "display_name": "Ada",
            "roles": "ops, billing.viewer;audit  x",
            "email_verified": "Yes",
            "password_hash": "$2b$…",
        }
    )
    assert (user.username, user.email, user.display_name) == ("ada", "ada@example.com", "Ada")
    assert list(user.roles) == ["ops", "billing.viewer", "audit", "x"]
    assert user.email_verified and user.WhichOneof("credential") == "password_hash"


@pytest.mark.parametrize(
    ("fields", "credential"),
    [
        ({"password": "secret"}, "password"),
        ({}, "invite"),
        ({"password": ""}, "invite"),
        ({"invite": True}, "invite"),
        ({"invite": "false"}, None),
    ],
)
def test_the_credential_of_a_row(fields: dict[str, object], credential: str | None) -> None:
    user = imported_user({"username": "ada", "email": "ada@example.com", **fields})
    assert user.WhichOneof("credential") == credential


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": "a", "password_hash": "b"}, "give only one of"),
        ({"password": "a", "invite": True}, "give only one of"),
        ({"email_verified": "perhaps"}, "email_verified must be true or false"),
        ({"roles": [1, 2]}, "roles must be a list of names or text"),
        ({"username": 7}, "username must be text"),
        ({"nickname": "x"}, "unknown field 'nickname'"),
    ],
)
def test_rows_that_make_no_account(fields: dict[str, object], message: str) -> None:
    with pytest.raises(RowError, match=message):
        imported_user(fields)


def test_csv_rows_keep_their_line_numbers() -> None:
    text = (
        "Username,Email,Password\n"
        "ada,ada@example.com,secret\n"
        "\n"
        'bob,bob@example.com,"two\nlines"\n'
        "carl,carl@example.com,x,extra\n"
    )
    rows = list(read_rows(io.StringIO(text), "csv"))
    assert [(row.line, row.error) for row in rows] == [
        (2, ""),
        (5, ""),
        (6, "more values than columns"),
    ]
    assert rows[1].user is not None and rows[1].user.password == "two\nlines"


def test_a_csv_header_with_an_unknown_column_is_refused_at_once() -> None:
    with pytest.raises(RowError, match="unknown column 'pasword'"):
        read_rows(io.StringIO("username,email,pasword\n"), "csv")
    with pytest.raises(RowError, match="named twice"):
        read_rows(io.StringIO("username,email,email\n"), "csv")


def test_formats_come_from_the_name() -> None:
    assert format_of("USERS.CSV") == "csv"
    assert format_of("s3://b/users.ndjson") == format_of("users.jsonl") == "jsonl"
    with pytest.raises(RowError, match="--format"):
        format_of("users.txt")


@pytest.mark.parametrize("row_format", ["csv", "jsonl"])
def test_export_rows_read_back_as_the_same_accounts(row_format: str) -> None:
    users = [
        user_pb2.User(
            username="ada",
            email="ada@example.com",
            display_name="Ada, Countess",
            roles=["ops", "audit"],
            email_verified=True,
        ),
        user_pb2.User(username="root", email=""),
    ]
    stream = io.StringIO()
    writer = RowWriter(stream, row_format)
    for user in users:
        writer.write(export_record(user))
    rows = list(read_rows(io.StringIO(stream.getvalue()), row_format))

    assert [row.error for row in rows] == ["", ""]
    first, second = (row.user for row in rows)
    assert first is not None and second is not None
    assert (first.username, first.display_name) == ("ada", "Ada, Countess")
    assert (list(first.roles), first.email_verified) == (["ops", "audit"], True)
    assert first.WhichOneof("credential") == "invite"
    assert (second.username, second.email) == ("root", "")
