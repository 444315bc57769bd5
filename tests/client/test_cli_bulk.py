"""``usermgmt import`` and ``usermgmt export`` as child processes: files, S3 objects on the moto
server, SQS queues with a dead-letter queue, the summary, the progress bar, 10,000 rows."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioboto3
import pytest

from tests.client.cli_support import Cli, Result, at_terminal
from tests.e2e.harness import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    PASSWORD,
    RunningServer,
    moto_settings,
    unique,
    wait_for,
)
from usermgmt import UsermgmtClient
from usermgmt_server.adapters.dynamodb import codec
from usermgmt_server.adapters.dynamodb.clients import open_aws_clients

IMPORTED_PASSWORD = "an imported pass phrase"
# A published bcrypt vector (OpenBSD's tests): the password is "U*U".
BCRYPT = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"


@pytest.fixture
async def cli(tmp_path: Path, server: RunningServer, moto_endpoint: str) -> Cli:
    """The command signed in as the bootstrap administrator, reaching AWS on the moto server."""
    command = Cli(tmp_path, server.address)
    command.env.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    signed_in = await command.login(ADMIN_USERNAME, ADMIN_PASSWORD)
    assert signed_in.code == 0, signed_in.stderr
    return command


@pytest.fixture
async def aws(moto_endpoint: str) -> AsyncIterator[tuple[Any, Any]]:
    """(s3, sqs) clients of the moto server."""
    session = aioboto3.Session(region_name="us-east-1")
    async with (
        session.client("s3", endpoint_url=moto_endpoint) as s3,
        session.client("sqs", endpoint_url=moto_endpoint) as sqs,
    ):
        yield s3, sqs


def summary(result: Result) -> dict[str, Any]:
    """The ``--json`` summary of an import."""
    return json.loads(result.stdout.strip().splitlines()[-1])


async def s3_object(s3: Any, key: str, path: Path) -> str:
    """Upload ``path`` to a new bucket of the moto server; its ``s3://`` URL."""
    bucket = f"imports-{uuid.uuid4().hex[:10]}"
    await s3.create_bucket(Bucket=bucket)
    body = await asyncio.to_thread(path.read_bytes)
    await s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def csv_file(path: Path, prefix: str) -> Path:
    lines = [
        "username,email,display_name,roles,email_verified,password,password_hash",
        f"{prefix}-a,{prefix}-a@example.com,Ann,ops billing.viewer,true,{IMPORTED_PASSWORD},",
        f"{prefix}-b,{prefix}-b@example.com,,,,,{BCRYPT}",
        f"{prefix}-c,{prefix}-c@example.com,Invited,,no,,",
        f"{prefix}-d,not an address,,,,{IMPORTED_PASSWORD},",
        "",
        f"{prefix}-e,{prefix}-e@example.com,,,,short,",
        f"{prefix}-f,{prefix}-f@example.com,,,maybe,,",
        f'{prefix}-g,{prefix}-g@example.com,"Quoted, with a comma",,,{IMPORTED_PASSWORD},',
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_a_csv_file_is_imported_with_a_summary_and_a_second_run_changes_nothing(
    cli: Cli, tmp_path: Path, server: RunningServer
) -> None:
    prefix = unique("csv")
    source = csv_file(tmp_path / "users.csv", prefix)

    first = await cli("import", str(source))

    assert first.code == 1, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith(
        f"Imported {source}: 4 created, 0 existed, 3 invalid, 0 failed (7 rows in "
    )
    assert lines[1].startswith("line 5: INVALID_ARGUMENT: user.email: is not a valid e-mail")
    assert lines[2].startswith("line 7: INVALID_ARGUMENT: user.password: must be at least")
    assert lines[3] == "line 8: UNREADABLE_ROW: email_verified must be true or false"
    assert len(lines) == 4

    second = summary(await cli("import", str(source), "--json"))
    assert (second["created"], second["exists"], second["invalid"]) == (0, 4, 3)
    assert [problem["line"] for problem in second["problems"]] == [5, 7, 8]

    async with UsermgmtClient(server.address) as client:
        await client.auth.login(f"{prefix}-a", IMPORTED_PASSWORD)
        me = await client.users.get("me")
        assert (me.display_name, list(me.roles), me.email_verified) == (
            "Ann",
            ["ops", "billing.viewer"],
            True,
        )
        await client.auth.login(f"{prefix}-b", "U*U")
        await client.auth.login(f"{prefix}-g", IMPORTED_PASSWORD)
        assert (await client.users.get("me")).display_name == "Quoted, with a comma"
    invited = [
        event
        for event in server.notifier.sent
        if event[1] == "RESET_PASSWORD" and event[2] == f"{prefix}-c@example.com"
    ]
    assert len(invited) == 1


async def test_jsonl_rows_and_what_cannot_be_read(cli: Cli, tmp_path: Path) -> None:
    prefix = unique("jsonl")
    rows = [
        {"username": f"{prefix}-a", "email": f"{prefix}-a@example.com", "invite": True},
        {"username": f"{prefix}-b", "email": f"{prefix}-b@example.com", "roles": ["ops"]},
        {"username": f"{prefix}-c", "email": f"{prefix}-c@example.com", "pasword": "typo"},
        {"username": f"{prefix}-d", "email": "x@example.com", "password": "p", "invite": True},
    ]
    text = "\n".join(json.dumps(row) for row in rows) + "\n[1, 2]\n{not json\n"
    source = tmp_path / "users.jsonl"
    source.write_text(text)

    result = summary(await cli("import", str(source), "--json"))

    assert (result["created"], result["invalid"], result["rows"]) == (2, 4, 6)
    assert [(p["line"], p["message"]) for p in result["problems"]] == [
        (3, "unknown field 'pasword'"),
        (4, "give only one of password, password_hash and invite"),
        (5, "not a JSON object"),
        (6, "not JSON: Expecting property name enclosed in double quotes"),
    ]
    from_stdin = summary(await cli("import", "-", "--json", stdin=text))
    assert (from_stdin["exists"], from_stdin["invalid"]) == (2, 4)


async def test_usage_errors_stop_before_anything_is_sent(cli: Cli, tmp_path: Path) -> None:
    misspelt = tmp_path / "users.csv"
    misspelt.write_text("username,email,pasword\nabc,abc@example.com,secret\n")
    column = await cli("import", str(misspelt))
    assert column.code == 2
    assert "unknown column 'pasword'" in column.stderr

    unknown_format = await cli("import", str(tmp_path / "users.txt"))
    assert unknown_format.code == 2 and "--format" in unknown_format.stderr
    missing = await cli("import", str(tmp_path / "missing.csv"))
    assert missing.code == 2 and "no such file" in missing.stderr
    nothing = await cli("import")
    assert nothing.code == 2


async def test_only_administrators_may_import(tmp_path: Path, server: RunningServer) -> None:
    cli = Cli(tmp_path, server.address)
    username = unique("plain")
    async with UsermgmtClient(server.address) as client:
        await client.users.register(username, f"{username}@example.com", PASSWORD)
    await cli.login(username)
    source = tmp_path / "users.jsonl"
    source.write_text(json.dumps({"username": unique(), "email": "a@example.com"}) + "\n")

    refused = await cli("import", str(source))

    assert refused.code == 1
    assert "PERMISSION_DENIED" in refused.stderr


async def test_an_export_reads_back_as_an_import(
    cli: Cli, tmp_path: Path, server: RunningServer
) -> None:
    prefix = unique("export")
    await cli("import", str(csv_file(tmp_path / "users.csv", prefix)))

    for name in ("users.jsonl", "users.csv"):
        exported = await cli("export", "--out", str(tmp_path / name), "--page-size", "7")
        assert exported.code == 0, exported.stderr
        count = int(exported.stderr.split()[1])
        assert count >= 5
        assert not (tmp_path / f"{name}.partial").exists()
        again = await cli("import", str(tmp_path / name), "--json")
        assert again.code == 0, again.stdout + again.stderr
        assert summary(again)["exists"] == count

    rows = [json.loads(line) for line in (tmp_path / "users.jsonl").read_text().splitlines()]
    mine = {row["username"]: row for row in rows if row["username"].startswith(prefix)}
    assert mine[f"{prefix}-a"] == {
        "username": f"{prefix}-a",
        "email": f"{prefix}-a@example.com",
        "display_name": "Ann",
        "roles": ["ops", "billing.viewer"],
        "email_verified": True,
    }
    assert all(set(row) == set(mine[f"{prefix}-a"]) for row in rows)


async def test_an_s3_object_is_imported(cli: Cli, tmp_path: Path, aws: tuple[Any, Any]) -> None:
    prefix = unique("s3")
    source = await s3_object(aws[0], "in/users.csv", csv_file(tmp_path / "users.csv", prefix))

    result = await cli("import", source, "--json")

    assert (summary(result)["created"], summary(result)["invalid"]) == (4, 3)
    missing = await cli("import", source.replace("users.csv", "missing.csv"))
    assert missing.code == 1
    assert "/in/missing.csv: NoSuchKey" in missing.stderr


async def test_the_progress_bar_at_a_terminal(cli: Cli, tmp_path: Path) -> None:
    prefix = unique("tty")
    source = tmp_path / "users.jsonl"
    source.write_text(
        "".join(
            json.dumps({"username": f"{prefix}-{n}", "email": f"{prefix}-{n}@example.com"}) + "\n"
            for n in range(30)
        )
    )

    terminal = await at_terminal(cli, "import", str(source), "--batch-size", "10")
    await terminal.expect("30 created")

    assert await terminal.finish() == 0
    assert "100%" in terminal.seen and "30 rows" in terminal.seen
    assert "import users.jsonl" in terminal.seen


async def test_a_queue_is_imported_and_bad_rows_go_to_its_dead_letter_queue(
    cli: Cli, aws: tuple[Any, Any], server: RunningServer
) -> None:
    _, sqs = aws
    queue = await _queue_with_dead_letters(sqs)
    dead_letters = queue + "-dlq"
    prefix = unique("sqs")
    good = [{"username": f"{prefix}-{n}", "email": f"{prefix}-{n}@example.com"} for n in range(12)]
    good[0]["password"] = IMPORTED_PASSWORD
    bodies = [json.dumps(row) for row in good]
    bodies += [
        json.dumps({"username": f"{prefix}-bad", "email": "not an address"}),
        json.dumps({"username": f"{prefix}-typo", "emial": "x@example.com"}),
        "not json",
        json.dumps(good[1]),
    ]
    for body in bodies:
        await sqs.send_message(
            QueueUrl=queue,
            MessageBody=body,
            MessageAttributes={"source": {"DataType": "String", "StringValue": "tests"}},
        )

    result = await cli(
        "import", "--from-sqs", queue, "--until-empty", "--wait-seconds", "1", "--json"
    )

    assert result.code == 0, result.stderr
    assert summary(result) == {
        "queue": queue,
        "created": 12,
        "exists": 1,
        "dead_lettered": 3,
        "left": 0,
    }
    assert result.stderr.count("(to the dead-letter queue)") == 3
    remaining = await sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    assert set(remaining["Attributes"].values()) == {"0"}
    received = await sqs.receive_message(
        QueueUrl=dead_letters, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    parked = {
        message["Body"]: {
            key: value["StringValue"] for key, value in message["MessageAttributes"].items()
        }
        for message in received["Messages"]
    }
    assert parked[bodies[12]]["usermgmt-import-reason"] == "INVALID_ARGUMENT"
    assert "user.email" in parked[bodies[12]]["usermgmt-import-message"]
    assert parked[bodies[13]]["usermgmt-import-message"] == "unknown field 'emial'"
    assert parked["not json"]["usermgmt-import-reason"] == "UNREADABLE_ROW"
    assert all(attributes["source"] == "tests" for attributes in parked.values())
    async with UsermgmtClient(server.address) as client:
        await client.auth.login(f"{prefix}-0", IMPORTED_PASSWORD)


async def test_the_queue_mode_stops_after_its_batch_on_sigterm(
    cli: Cli, aws: tuple[Any, Any]
) -> None:
    _, sqs = aws
    queue = await _queue_with_dead_letters(sqs)
    prefix = unique("term")
    for n in range(3):
        row = {"username": f"{prefix}-{n}", "email": f"{prefix}-{n}@example.com"}
        await sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(row))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "usermgmt.cli",
        "import",
        "--from-sqs",
        queue,
        "--wait-seconds",
        "1",
        env=cli.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    async def drained() -> bool:
        attributes = await sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        return set(attributes["Attributes"].values()) == {"0"}

    assert await wait_for(drained, within=30)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().startswith(f"Imported from {queue}: 3 created, 0 existed, 0 sent")


async def _queue_with_dead_letters(sqs: Any) -> str:
    """A new queue whose redrive policy names a new dead-letter queue (3 receives)."""
    name = f"import-{uuid.uuid4().hex[:10]}"
    dead_letters = (await sqs.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
    attributes = await sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": attributes["Attributes"]["QueueArn"], "maxReceiveCount": "3"}
    created = await sqs.create_queue(
        QueueName=name, Attributes={"RedrivePolicy": json.dumps(redrive)}
    )
    return created["QueueUrl"]


async def test_a_queue_without_a_dead_letter_queue_is_refused(
    cli: Cli, aws: tuple[Any, Any]
) -> None:
    _, sqs = aws
    queue = (await sqs.create_queue(QueueName=f"plain-{uuid.uuid4().hex[:10]}"))["QueueUrl"]
    refused = await cli("import", "--from-sqs", queue, "--until-empty", "--wait-seconds", "0")
    assert refused.code == 1
    assert "the queue has no dead-letter queue (RedrivePolicy)" in refused.stderr


# -- 10,000 rows ----------------------------------------------------------------------------------

TEN_THOUSAND = 10_000


def _rows_file(path: Path, prefix: str) -> Path:
    with path.open("w") as stream:
        for n in range(TEN_THOUSAND):
            row = {
                "username": f"{prefix}-{n:05d}",
                "email": f"{prefix}-{n:05d}@example.com",
                "password": IMPORTED_PASSWORD,
            }
            stream.write(json.dumps(row) + "\n")
    return path


async def _stored_accounts(moto_endpoint: str, table: str, prefix: str) -> int:
    """How many of the rows' accounts the table holds: each username's guard item, and the
    account item it points to, read with BatchGetItem (a scan of the whole table is slow)."""
    usernames = [f"{prefix}-{n:05d}" for n in range(TEN_THOUSAND)]
    guards = await _batch_get(
        moto_endpoint, table, [codec.username_guard_key(name) for name in usernames]
    )
    owners = [guard["user_id"]["S"] for guard in guards]
    accounts = await _batch_get(moto_endpoint, table, [codec.user_key(o) for o in owners])
    wanted = set(usernames)
    return sum(1 for item in accounts if item["username"]["S"] in wanted)


async def _batch_get(moto_endpoint: str, table: str, keys: list[dict[str, Any]]) -> list[Any]:
    found: list[Any] = []
    async with open_aws_clients(moto_settings(moto_endpoint)) as clients:
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {table: {"Keys": keys[start : start + 100]}}
            while request:
                response = await clients.dynamodb.batch_get_item(RequestItems=request)
                found += response["Responses"].get(table, [])
                request = response.get("UnprocessedKeys") or {}
    return found


async def _import_twice(
    cli: Cli, source: str, moto_endpoint: str, server: RunningServer, prefix: str, label: str
) -> None:
    first = await cli("import", source, "--json", within=1800)
    assert first.code == 0, first.stdout + first.stderr
    created = summary(first)
    assert (created["created"], created["rows"]) == (TEN_THOUSAND, TEN_THOUSAND)
    stored = await _stored_accounts(moto_endpoint, server.settings.table_name, prefix)
    assert stored == TEN_THOUSAND

    second = await cli("import", source, "--json", within=1800)
    assert second.code == 0, second.stdout + second.stderr
    again = summary(second)
    assert (again["exists"], again["created"]) == (TEN_THOUSAND, 0)
    assert await _stored_accounts(moto_endpoint, server.settings.table_name, prefix) == stored
    print(
        f"\n10,000 rows from {label}: created in {created['seconds']:.1f} s, "
        f"re-run (all exist) in {again['seconds']:.1f} s"
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_ten_thousand_rows_from_a_local_file(
    cli: Cli, tmp_path: Path, moto_endpoint: str, server: RunningServer
) -> None:
    prefix = unique("tenk-file")
    source = _rows_file(tmp_path / "users.jsonl", prefix)
    await _import_twice(cli, str(source), moto_endpoint, server, prefix, "a local file")


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_ten_thousand_rows_from_an_s3_object(
    cli: Cli, tmp_path: Path, moto_endpoint: str, server: RunningServer, aws: tuple[Any, Any]
) -> None:
    prefix = unique("tenk-s3")
    source = await s3_object(aws[0], "users.jsonl", _rows_file(tmp_path / "users.jsonl", prefix))
    await _import_twice(cli, source, moto_endpoint, server, prefix, "an S3 object")
