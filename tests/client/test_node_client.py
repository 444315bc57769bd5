"""A Node.js program (client/examples/node) using @grpc/grpc-js and @grpc/proto-loader from npm
against a real server: it loads the service's own .proto files, registers, authenticates, reads
"me" and decodes the rich error status (ErrorInfo, BadRequest) the way the Python client does."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import RunningServer, unique
from usermgmt import UsermgmtClient

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE = REPOSITORY / "client" / "examples" / "node"
PROTO_DIR = REPOSITORY / "proto"
SCRIPT = "usermgmt-example.mjs"


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def node_example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the example with its locked npm dependencies installed (npm ci)."""
    for tool in ("node", "npm"):
        assert shutil.which(tool), f"{tool} is required for the cross-language client test"
    directory = tmp_path_factory.mktemp("node-example")
    for name in ("package.json", "package-lock.json", SCRIPT):
        shutil.copy(EXAMPLE / name, directory / name)
    installed = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    yield directory


async def run_example(directory: Path, address: str, *arguments: str) -> Outcome:
    process = await asyncio.create_subprocess_exec(
        "node",
        SCRIPT,
        "--address",
        address,
        "--proto-dir",
        str(PROTO_DIR),
        *arguments,
        cwd=directory,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Outcome(process.returncode, stdout.decode(), stderr.decode())


async def test_node_client_registers_authenticates_and_reads_me(
    node_example: Path, server: RunningServer, admin: UsermgmtClient
) -> None:
    username = unique("node")
    outcome = await run_example(node_example, server.address, "--username", username)
    assert outcome.code == 0, outcome.stderr
    result = json.loads(outcome.stdout)

    assert result["registered"]["username"] == username
    assert result["registered"]["state"] == "USER_STATE_ACTIVE"
    assert result["me"]["user_id"] == result["registered"]["user_id"]
    assert result["me"]["email"] == f"{username}@example.com"
    assert result["me"]["etag"]
    assert result["authenticated"] == {"token_type": "Bearer", "expires_in": 900}
    assert result["duplicate_register"]["code"] == "ALREADY_EXISTS"
    assert result["duplicate_register"]["reason"] == "USERNAME_TAKEN"

    stored = await admin.users.get(result["registered"]["user_id"])
    assert stored.username == username


async def test_node_client_reads_field_violations(
    node_example: Path, server: RunningServer
) -> None:
    outcome = await run_example(node_example, server.address, "--username", "x")
    assert outcome.code == 1
    assert outcome.stdout == ""
    message = outcome.stderr.strip()
    assert message.startswith("usermgmt-example: ")
    error = json.loads(message.removeprefix("usermgmt-example: "))
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["reason"] == "INVALID_ARGUMENT"
    assert set(error["violations"]) == {"username"}
