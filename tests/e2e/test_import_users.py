"""ImportUsers: passwords, foreign hashes rehashed at sign-in, invitations, bad rows, re-runs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import secrets
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import argon2
import bcrypt
import grpc
import pytest

from tests.e2e.harness import (
    ADMIN_USERNAME,
    Api,
    RunningServer,
    authenticate,
    bearer,
    emails_to,
    expect_error,
    expect_rpc_error,
    mentions_code,
    moto_settings,
    notification_ids,
    notifier_under_test,
    scan_table,
    sent_emails,
    unique,
)
from usermgmt.v1 import user_pb2, user_service_pb2
from usermgmt_server.adapters.dynamodb import codec
from usermgmt_server.adapters.dynamodb.clients import open_aws_clients
from usermgmt_server.logging_setup import JsonFormatter

pb = user_service_pb2
CREATED, EXISTS = pb.IMPORT_OUTCOME_CREATED, pb.IMPORT_OUTCOME_EXISTS
INVALID, FAILED = pb.IMPORT_OUTCOME_INVALID, pb.IMPORT_OUTCOME_FAILED
PASSWORD = "an imported pass phrase"
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
# The server's Argon2id parameters (the harness's FAST_ARGON2).
CURRENT_ARGON2 = "$argon2id$v=19$m=1024,t=1,p=1$"


def _django(password: str, iterations: int = 1000) -> str:
    salt = secrets.token_hex(6)
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(key).decode()}"


def _passlib(password: str, rounds: int = 1000) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds)

    def ab64(raw: bytes) -> str:
        return base64.b64encode(raw).decode().rstrip("=").replace("+", ".")

    return f"$pbkdf2-sha256${rounds}${ab64(salt)}${ab64(key)}"


HASHERS = {
    "bcrypt": lambda password: bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode(),
    "django": _django,
    "passlib": _passlib,
    "argon2id": lambda password: argon2.PasswordHasher(
        time_cost=2, memory_cost=2048, parallelism=2
    ).hash(password),
}


def row(username: str | None = None, **fields: Any) -> pb.ImportedUser:
    """An import row: a fresh username and matching address, the password unless told."""
    username = username or unique("imp")
    fields.setdefault("email", f"{username}@example.com")
    if not {"password", "password_hash", "invite"} & fields.keys():
        fields["password"] = PASSWORD
    if fields.get("invite") is True:
        fields["invite"] = pb.ImportedUser.Invite()
    return pb.ImportedUser(username=username, **fields)


async def import_rows(
    api: Api, token: str, rows: Iterable[pb.ImportedUser]
) -> pb.ImportUsersResponse:
    requests = [pb.ImportUsersRequest(user=user) for user in rows]
    return await api.users.ImportUsers(iter(requests), metadata=bearer(token))


async def stored_hash(moto_endpoint: str, table: str, user_id: str) -> str:
    async with open_aws_clients(moto_settings(moto_endpoint)) as clients:
        item = await clients.dynamodb.get_item(
            TableName=table, Key=codec.user_key(user_id), ConsistentRead=True
        )
    return item["Item"]["password_hash"]["S"]


def violations(result: pb.ImportUserResult) -> dict[str, str]:
    return {v.field: v.reason or v.description for v in result.field_violations}


async def test_rows_of_every_kind_are_created_with_their_registered_events(
    api: Api, admin_token: str, server: RunningServer
) -> None:
    rows = [
        row(display_name="Pat", roles=["ops", "billing.viewer"], email_verified=True),
        *(row(password_hash=make(PASSWORD)) for make in HASHERS.values()),
        row(invite=True),
    ]

    response = await import_rows(api, admin_token, rows)

    assert [r.index for r in response.results] == list(range(len(rows)))
    assert [r.outcome for r in response.results] == [CREATED] * len(rows)
    assert (response.created_count, response.exists_count) == (len(rows), 0)
    assert (response.invalid_count, response.failed_count) == (0, 0)
    first = await api.users.GetUser(
        pb.GetUserRequest(user_id=response.results[0].user_id), metadata=bearer(admin_token)
    )
    assert first.user.username == rows[0].username
    assert (first.user.display_name, list(first.user.roles)) == ("Pat", ["ops", "billing.viewer"])
    assert first.user.email_verified and first.user.state == user_pb2.USER_STATE_ACTIVE
    registered = {
        event.subject  # type: ignore[attr-defined]
        for event in server.notifier.events
        if event.type == "usermgmt.user.registered.v1"  # type: ignore[attr-defined]
    }
    assert {r.user_id for r in response.results} <= registered
    assert "password" not in str(response) and "$" not in str(response)


@pytest.mark.parametrize("scheme", list(HASHERS))
async def test_each_hash_format_signs_in_and_is_rehashed_to_argon2id(
    api: Api, admin_token: str, server: RunningServer, moto_endpoint: str, scheme: str
) -> None:
    password_hash = HASHERS[scheme](PASSWORD)
    imported = await import_rows(api, admin_token, [row(password_hash=password_hash)])
    (result,) = imported.results
    assert result.outcome == CREATED, result
    table = server.settings.table_name
    assert await stored_hash(moto_endpoint, table, result.user_id) == password_hash

    wrong = await expect_error(authenticate(api, result.user_id and "", "x"))
    assert wrong.code == grpc.StatusCode.INVALID_ARGUMENT
    user = await api.users.GetUser(
        pb.GetUserRequest(user_id=result.user_id), metadata=bearer(admin_token)
    )
    refused = await expect_error(authenticate(api, user.user.username, PASSWORD + " wrong"))
    assert refused.reason == "INVALID_CREDENTIALS"
    assert await stored_hash(moto_endpoint, table, result.user_id) == password_hash

    signed_in = await authenticate(api, user.user.username, PASSWORD)
    assert signed_in.access_token
    rehashed = await stored_hash(moto_endpoint, table, result.user_id)
    assert rehashed.startswith(CURRENT_ARGON2)
    assert (await authenticate(api, user.user.email, PASSWORD)).access_token
    assert await stored_hash(moto_endpoint, table, result.user_id) == rehashed


async def test_an_invitation_sends_a_reset_code_by_mail_that_sets_the_password(
    api: Api, admin_token: str, server: RunningServer, moto_endpoint: str
) -> None:
    table = server.settings.table_name
    async with notifier_under_test(moto_endpoint, table) as notifier:
        (result,) = (await import_rows(api, admin_token, [row(invite=True)])).results
        assert result.outcome == CREATED
        user = (
            await api.users.GetUser(
                pb.GetUserRequest(user_id=result.user_id), metadata=bearer(admin_token)
            )
        ).user
        code = server.notifier.last_code(user.user_id, "RESET_PASSWORD")
        sent = notification_ids(
            server.notifier, user.user_id, "usermgmt.notification.password_reset_code.v1"
        )
        assert await notifier.deliver_until_sent(sent)
    mails = emails_to(sent_emails(), user.email)
    assert any(mentions_code(str(mail["body"]), code) for mail in mails), mails

    # Until the code is used, no password opens the account.
    refused = await expect_error(authenticate(api, user.username, ""))
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    for guess in ("!", PASSWORD):
        refused = await expect_error(authenticate(api, user.username, guess))
        assert refused.reason == "INVALID_CREDENTIALS"
    await api.users.ResetPassword(
        pb.ResetPasswordRequest(login=user.username, code=code, new_password=PASSWORD)
    )
    assert (await authenticate(api, user.username, PASSWORD)).access_token
    assert (await stored_hash(moto_endpoint, table, user.user_id)).startswith(CURRENT_ARGON2)


async def test_bad_rows_are_reported_and_the_good_ones_created(api: Api, admin_token: str) -> None:
    holder = row()
    await import_rows(api, admin_token, [holder])
    rows = [
        row(),
        row(email="not an address"),
        row(password="short"),
        row(password_hash="md5$salt$5f4dcc3b5aa765d61d8327deb882cf99"),
        row(password_hash="$2b$12$broken"),
        pb.ImportedUser(username=unique("imp"), email="nocredential@example.com"),
        row(holder.username, email=f"other-{holder.email}"),
        row(email=holder.email.upper()),
        row(roles=["Not A Role"]),
        pb.ImportedUser(),
        row(),
    ]

    response = await import_rows(api, admin_token, rows)

    outcomes = [r.outcome for r in response.results]
    assert outcomes == [CREATED] + [INVALID] * 9 + [CREATED]
    assert (response.created_count, response.invalid_count) == (2, 9)
    results = response.results
    assert violations(results[1]).keys() == {"user.email"}
    assert violations(results[2]) == {"user.password": "PASSWORD_TOO_SHORT"}
    assert violations(results[3]) == {"user.password_hash": "UNSUPPORTED_PASSWORD_HASH"}
    assert "supported format" in results[3].field_violations[0].description
    assert violations(results[4]) == {"user.password_hash": "UNSUPPORTED_PASSWORD_HASH"}
    assert violations(results[5]) == {"user.password": "PASSWORD_REQUIRED"}
    assert (results[6].reason, list(violations(results[6]))) == (
        "USERNAME_TAKEN",
        ["user.username"],
    )
    assert (results[7].reason, list(violations(results[7]))) == ("EMAIL_TAKEN", ["user.email"])
    assert violations(results[8]).keys() == {"user.roles[0]"}
    assert violations(results[9]).keys() == {"user.username", "user.email"}
    assert [r.reason for r in results[1:10]] == (
        ["INVALID_ARGUMENT"] * 5 + ["USERNAME_TAKEN", "EMAIL_TAKEN"] + ["INVALID_ARGUMENT"] * 2
    )
    assert all(r.message for r in results if r.outcome == INVALID)


async def test_a_second_run_reports_exists_and_changes_nothing(
    api: Api, admin_token: str, server: RunningServer, moto_endpoint: str
) -> None:
    rows = [row(), row(invite=True), row(password_hash=HASHERS["bcrypt"](PASSWORD))]
    first = await import_rows(api, admin_token, rows)
    table = server.settings.table_name
    accounts = await _accounts(moto_endpoint, table, [r.user_id for r in first.results])
    events_before = len(server.notifier.events)

    # The same rows again, and in other spellings with a password today's policy refuses.
    again = [
        pb.ImportedUser(username=r.username.upper(), email=r.email.upper(), password="x")
        for r in rows
    ]
    second = await import_rows(api, admin_token, rows + again)

    assert [r.outcome for r in second.results] == [EXISTS] * 6
    assert [r.user_id for r in second.results] == [r.user_id for r in first.results] * 2
    assert second.exists_count == 6 and second.created_count == 0
    assert await _accounts(moto_endpoint, table, [r.user_id for r in first.results]) == accounts
    assert len(server.notifier.events) == events_before


async def test_a_row_without_an_address_is_matched_by_its_username(
    api: Api, admin_token: str
) -> None:
    admin = await api.users.GetUser(pb.GetUserRequest(user_id="me"), metadata=bearer(admin_token))
    assert admin.user.email == ""
    rows = [
        pb.ImportedUser(username=ADMIN_USERNAME.upper(), invite=pb.ImportedUser.Invite()),
        pb.ImportedUser(username=unique("imp"), invite=pb.ImportedUser.Invite()),
    ]

    existing, new = (await import_rows(api, admin_token, rows)).results

    assert (existing.outcome, existing.user_id) == (EXISTS, admin.user.user_id)
    assert new.outcome == INVALID and violations(new) == {"user.email": "is required"}


async def _accounts(moto_endpoint: str, table: str, user_ids: list[str]) -> list[dict[str, Any]]:
    items = await scan_table(moto_endpoint, table)
    wanted = {f"USER#{user_id}" for user_id in user_ids}
    return sorted((i for i in items if i["pk"] in wanted), key=lambda i: str(i["pk"]))


async def test_one_row_twice_in_a_stream_is_created_once(api: Api, admin_token: str) -> None:
    twice = row()
    response = await import_rows(api, admin_token, [twice, row(), twice])
    first, _, second = response.results
    assert sorted([first.outcome, second.outcome]) == sorted([CREATED, EXISTS])
    assert first.user_id == second.user_id


async def test_only_administrators_may_import(api: Api) -> None:
    _, token = await api.new_user_with_token()
    denied = await expect_error(import_rows(api, token, [row()]))
    assert (denied.code, denied.reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")
    anonymous = await expect_error(api.users.ImportUsers(iter([pb.ImportUsersRequest(user=row())])))
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED


async def test_more_rows_than_one_call_takes_is_refused_after_the_allowed_ones(
    api: Api, admin_token: str
) -> None:
    # Rows that fail their checks cost no storage, so the limit is quick to reach.
    too_many = [pb.ImportedUser(username="x")] * 1_001
    refused = await expect_error(import_rows(api, admin_token, too_many))
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violations == {"user": "at most 1000 rows per call"}


async def test_the_most_rows_with_the_most_violations_fit_in_a_default_response(
    api: Api, admin_token: str
) -> None:
    bad = {"display_name": "x" * 201, "roles": [f"Bad Role {n}" for n in range(32)]}
    rows = [row(password="short", **bad) for _ in range(1_000)]

    response = await import_rows(api, admin_token, rows)

    assert response.invalid_count == 1_000
    assert all(len(result.field_violations) == 34 for result in response.results)
    # Messages are cut short (the violations hold every detail): about 2.2 MB in all.
    assert response.ByteSize() < 3 * 1024 * 1024


async def test_an_empty_stream_gives_an_empty_result(api: Api, admin_token: str) -> None:
    response = await import_rows(api, admin_token, [])
    assert list(response.results) == [] and response.created_count == 0


async def test_no_password_or_hash_in_logs_responses_or_events(
    api: Api, admin_token: str, server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="usermgmt_server")
    password = f"Canary-import-{secrets.token_hex(8)}"
    hashes = [make(f"Canary-hash-{secrets.token_hex(8)}") for make in HASHERS.values()]
    rows = [row(password=password), *(row(password_hash=h) for h in hashes)]
    too_short = f"C{secrets.token_hex(4)}"
    rows += [row(password=too_short), row(password_hash=hashes[0] + "x")]

    response = await import_rows(api, admin_token, rows)
    signed_in = await authenticate(api, rows[0].username, password)
    failed = await expect_rpc_error(authenticate(api, rows[1].username, password))

    assert failed.code() == grpc.StatusCode.UNAUTHENTICATED and signed_in.access_token
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any("users imported" in line for line in lines)
    events = [json.dumps(event.data, default=str) for event in server.notifier.events]  # type: ignore[attr-defined]
    texts = [str(response), *lines, *events]
    secrets_sent = [password, too_short, *hashes, hashes[0] + "x"]
    for secret in secrets_sent:
        assert not [text for text in texts if secret in text], "a password or hash leaked"
    assert not [text for text in texts if "$argon2" in text or "$2b$" in text]


async def test_the_readme_grpcurl_example_imports_as_shown(
    server: RunningServer, admin_token: str
) -> None:
    example = re.search(r"UserService/ImportUsers <<'EOF'\n(.*?)\nEOF\n", README, re.S)
    assert example, "README shows the ImportUsers example"
    rows = example.group(1)
    for name in ("carol", "dave", "erin"):
        rows = rows.replace(f'"{name}', f'"{name}-{secrets.token_hex(4)}')
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "grpcurl"),
        "-plaintext",
        "-H",
        f"authorization: Bearer {admin_token}",
        "-d",
        "@",
        server.address,
        "usermgmt.v1.UserService/ImportUsers",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(rows.encode()), 30)
    assert process.returncode == 0, stderr.decode()
    response = json.loads(stdout)
    outcomes = [result["outcome"] for result in response["results"]]
    assert outcomes == ["IMPORT_OUTCOME_CREATED"] * 3 + ["IMPORT_OUTCOME_INVALID"]
    assert (response["created_count"], response["invalid_count"]) == (3, 1)
    assert response["results"][3]["reason"] == "INVALID_ARGUMENT"
    assert "field_violations" in response["results"][3]
