"""The ``usermgmt`` command, run as a child process against a real server with a private
configuration directory: outputs, exit codes, one-line errors, the credentials file."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.client.cli_support import Cli, at_terminal
from tests.e2e.harness import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    PASSWORD,
    RunningServer,
    running_server,
    unique,
)
from usermgmt import UsermgmtClient
from usermgmt_server.adapters.security.system import ManualClock

CONSOLE_SCRIPT = Path(sys.executable).parent / "usermgmt"


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture(scope="module")
async def server(moto_endpoint: str, clock: ManualClock) -> AsyncIterator[RunningServer]:
    async with running_server(moto_endpoint, clock=clock) as started:
        yield started


@pytest.fixture
def cli(tmp_path: Path, server: RunningServer) -> Cli:
    return Cli(tmp_path, server.address)


async def _register(cli: Cli, username: str | None = None) -> str:
    username = username or unique("cli")
    result = await cli(
        "register",
        "--username",
        username,
        "--email",
        f"{username}@example.com",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert result.code == 0, result.stderr
    return username


def _single_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


async def test_help_lists_commands_and_exit_codes(cli: Cli) -> None:
    result = await cli("--help", command=(str(CONSOLE_SCRIPT),))
    assert result.code == 0
    for command in ("login", "logout", "register", "me", "get", "update", "delete", "list"):
        assert command in result.stdout
    assert "exit codes" in result.stdout and "3    not signed in" in result.stdout
    unknown = await cli("frobnicate")
    assert unknown.code == 2
    assert "invalid choice" in unknown.stderr


async def test_register_login_me_and_the_credentials_file(cli: Cli) -> None:
    username = await _register(cli)
    assert not cli.credentials.exists()

    login = await cli.login(username)
    assert login.code == 0, login.stderr
    assert f"Signed in to {cli.target} as {username}" in login.stdout

    mode = stat.S_IMODE(cli.credentials.stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(cli.credentials.parent.stat().st_mode) == 0o700
    text = cli.credentials.read_text()
    assert PASSWORD not in text
    stored = cli.stored()
    assert stored["username"] == username and stored["access_token"] and stored["refresh_token"]

    me = await cli("me")
    assert me.code == 0, me.stderr
    fields = dict(line.split(None, 1) for line in me.stdout.strip().splitlines() if " " in line)
    assert fields["username"] == username
    assert fields["state"] == "ACTIVE"

    as_json = await cli("me", "--json")
    document = json.loads(as_json.stdout)
    assert document["username"] == username
    assert document["user_id"] == stored["user_id"]
    fetched = await cli("get", stored["user_id"], "--json")
    assert json.loads(fetched.stdout)["user_id"] == stored["user_id"]


async def test_errors_are_one_line_with_reason_and_violations(cli: Cli) -> None:
    username = await _register(cli)
    taken = await cli(
        "register",
        "--username",
        username,
        "--email",
        f"x-{username}@example.com",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert taken.code == 1
    assert _single_line(taken.stderr) == (
        "usermgmt: error: USERNAME_TAKEN: the username is already taken"
    )

    bad = await cli(
        "register", "--username", "x", "--email", "nope", "--password-stdin", stdin="short\n"
    )
    assert bad.code == 1
    line = _single_line(bad.stderr)
    assert line.startswith("usermgmt: error: INVALID_ARGUMENT: ")
    assert "username: " in line and "email: " in line
    assert "password: " in line and "(PASSWORD_TOO_SHORT)" in line

    wrong = await cli.login(username, "not the right password")
    assert wrong.code == 1
    assert _single_line(wrong.stderr) == (
        "usermgmt: error: INVALID_CREDENTIALS: invalid login or password"
    )


async def test_passwords_never_come_from_arguments(cli: Cli) -> None:
    username = await _register(cli)
    flag = await cli("login", username, "--password", PASSWORD)
    assert flag.code == 2
    assert "unrecognized arguments" in flag.stderr
    # Standard input is not a terminal and --password-stdin was not given: no silent read.
    no_terminal = await cli("login", username, stdin=PASSWORD + "\n")
    assert no_terminal.code == 2
    assert "--password-stdin" in no_terminal.stderr
    empty = await cli("login", username, "--password-stdin", stdin="\n")
    assert empty.code == 2


async def test_update_and_usage_errors(cli: Cli) -> None:
    username = await _register(cli)
    await cli.login(username)
    updated = await cli(
        "update", "--display-name", "Shown Name", "--notification-channel", "none", "--json"
    )
    assert updated.code == 0, updated.stderr
    document = json.loads(updated.stdout)
    assert document["display_name"] == "Shown Name"
    assert document["notification_channel"] == "NOTIFICATION_CHANNEL_NONE"

    nothing = await cli("update")
    assert nothing.code == 2
    assert "nothing to change" in nothing.stderr

    denied = await cli("update", "--roles", "admin")
    assert denied.code == 1
    assert _single_line(denied.stderr).startswith("usermgmt: error: PERMISSION_DENIED: ")

    stale = await cli("update", "--display-name", "Again", "--etag", "v1")
    assert stale.code == 1
    assert "ETAG_MISMATCH" in stale.stderr


async def test_list_follows_pages_as_a_table_or_json(cli: Cli, server: RunningServer) -> None:
    user = await _register(cli)
    await cli.login(user)
    denied = await cli("list")
    assert denied.code == 1 and "PERMISSION_DENIED" in denied.stderr

    async with UsermgmtClient(server.address) as client:
        for _ in range(5):
            name = unique("listed")
            await client.users.register(name, f"{name}@example.com", PASSWORD)
        expected = len(await _all_users(client))

    await cli.login(ADMIN_USERNAME, ADMIN_PASSWORD)
    table = await cli("list", "--page-size", "2")
    assert table.code == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].split() == ["USER_ID", "USERNAME", "EMAIL", "STATE", "ROLES"]
    assert len(lines) == expected + 1
    assert any(ADMIN_USERNAME in line and "admin" in line for line in lines)

    as_json = await cli("list", "--page-size", "3", "--json")
    users = json.loads(as_json.stdout)
    assert len(users) == expected == len({u["user_id"] for u in users})
    limited = await cli("list", "--page-size", "2", "--json", "--limit", "3")
    assert len(json.loads(limited.stdout)) == 3
    filtered = await cli("list", "--filter", f'username = "{user}"', "--json")
    assert [u["username"] for u in json.loads(filtered.stdout)] == [user]


async def _all_users(client: UsermgmtClient) -> list:
    await client.auth.login(ADMIN_USERNAME, ADMIN_PASSWORD)
    return await client.users.list().collect()


async def test_renewed_tokens_are_written_back(cli: Cli, clock: ManualClock) -> None:
    username = await _register(cli)
    await cli.login(username)
    before = cli.stored()
    clock.advance(timedelta(minutes=20))  # the stored access token has expired

    me = await cli("me")
    assert me.code == 0, me.stderr
    after = cli.stored()
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]
    assert after["username"] == username
    assert stat.S_IMODE(cli.credentials.stat().st_mode) == 0o600
    # No temporary file is left beside it.
    assert sorted(p.name for p in cli.credentials.parent.iterdir()) == [
        "credentials.json",
        "credentials.json.lock",
    ]
    assert (await cli("me")).code == 0


async def test_an_ended_session_exits_with_code_3(
    cli: Cli, clock: ManualClock, server: RunningServer
) -> None:
    username = await _register(cli)
    await cli.login(username)
    clock.advance(seconds=2)
    async with UsermgmtClient(server.address) as admin:
        await admin.auth.login(ADMIN_USERNAME, ADMIN_PASSWORD)
        await admin.auth.revoke_sessions(cli.stored()["user_id"])
    clock.advance(timedelta(minutes=20))

    ended = await cli("me")
    assert ended.code == 3
    assert _single_line(ended.stderr) == (
        "usermgmt: error: INVALID_REFRESH_TOKEN: the refresh token is invalid, expired or "
        "revoked (the session has ended: run `usermgmt login`)"
    )


async def test_logout_and_signed_out_commands(cli: Cli) -> None:
    username = await _register(cli)
    await cli.login(username)
    refresh_token = cli.stored()["refresh_token"]
    out = await cli("logout")
    assert out.code == 0 and "Signed out" in out.stdout
    assert cli.stored() == {}
    me = await cli("me")
    assert me.code == 3
    assert _single_line(me.stderr) == (
        f"usermgmt: not signed in to {cli.target}: run `usermgmt login`"
    )
    again = await cli("logout")
    assert again.code == 0 and "Not signed in" in again.stdout
    # The server ended the session too.
    async with UsermgmtClient(cli.target) as client:
        from usermgmt import InvalidRefreshToken, Session

        client.session = Session("x.y.z", refresh_token)
        with pytest.raises(InvalidRefreshToken):
            await client.auth.refresh()


async def test_delete_needs_confirmation(cli: Cli) -> None:
    username = await _register(cli)
    await cli.login(username)
    unconfirmed = await cli("delete")
    assert unconfirmed.code == 2
    assert "--yes" in unconfirmed.stderr
    assert (await cli("me")).code == 0

    deleted = await cli("delete", "--yes")
    assert deleted.code == 0, deleted.stderr
    assert cli.stored() == {}


async def test_health_and_targets(cli: Cli, tmp_path: Path) -> None:
    healthy = await cli("health")
    assert healthy.code == 0
    assert healthy.stdout.strip() == f"{cli.target}: SERVING, ready"
    as_json = json.loads((await cli("health", "--json")).stdout)
    assert as_json == {"target": cli.target, "status": "SERVING", "ready": True, "serving": True}

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    # --target wins over USERMGMT_TARGET.
    down = await cli("--target", dead, "--timeout", "3", "health")
    assert down.code == 1
    assert _single_line(down.stderr).startswith("usermgmt: error: UNAVAILABLE: ")


async def test_parallel_commands_renew_the_stored_session_once(
    cli: Cli, clock: ManualClock
) -> None:
    username = await _register(cli)
    await cli.login(username)
    clock.advance(timedelta(minutes=20))
    # Each command finds the expired token; a second use of the one refresh token would make
    # the server revoke the session, so all of them succeeding means one renewal was shared.
    results = await asyncio.gather(*(cli("me", "--json") for _ in range(4)))
    assert [result.code for result in results] == [0, 0, 0, 0], [r.stderr for r in results]
    assert (await cli("me")).code == 0


async def test_prompts_at_a_terminal_do_not_echo_the_password(cli: Cli) -> None:
    username = await _register(cli)
    terminal = await at_terminal(cli, "login")
    await terminal.expect("Login: ")
    terminal.type(username)
    await terminal.expect("Password: ")
    terminal.type(PASSWORD)
    assert await terminal.finish() == 0
    assert f"Signed in to {cli.target} as {username}" in terminal.seen
    assert PASSWORD not in terminal.seen

    mismatch = await at_terminal(cli, "register", "--username", unique(), "--email", "m@x.io")
    await mismatch.expect("Password: ")
    mismatch.type(PASSWORD)
    await mismatch.expect("Repeat the password: ")
    mismatch.type(PASSWORD + " typo")
    assert await mismatch.finish() == 2
    assert "the passwords do not match" in mismatch.seen

    confirm = await at_terminal(cli, "delete")
    await confirm.expect("[y/N] ")
    confirm.type("n")
    assert await confirm.finish() == 0
    assert "Nothing was deleted" in confirm.seen
    assert (await cli("me")).code == 0
