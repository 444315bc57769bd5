"""Operators' view: grpcurl (the real binary) through reflection, health and the API."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.e2e.harness import RunningServer, unique

GRPCURL = str(Path(sys.executable).parent / "grpcurl")


async def grpcurl(*args: str) -> tuple[int, str, str]:
    """Run grpcurl without blocking the event loop the in-process server runs on."""
    process = await asyncio.create_subprocess_exec(
        GRPCURL, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_list_and_describe_through_reflection(server: RunningServer) -> None:
    code, stdout, stderr = await grpcurl("-plaintext", server.address, "list")
    assert code == 0, stderr
    for service in (
        "usermgmt.v1.UserService",
        "usermgmt.v1.AuthService",
        "usermgmt.v1.ProbeService",
        "grpc.health.v1.Health",
    ):
        assert service in stdout.split()
    code, stdout, stderr = await grpcurl(
        "-plaintext", server.address, "describe", "usermgmt.v1.UserService"
    )
    assert code == 0, stderr
    for rpc in ("Register", "GetUser", "UpdateUser", "DeleteUser", "ListUsers"):
        assert f"rpc {rpc}" in stdout
    code, stdout, _ = await grpcurl("-plaintext", server.address, "describe", "usermgmt.v1.User")
    assert code == 0 and "string etag" in stdout
    assert "string password" not in stdout and "hash" not in stdout


async def test_health_check(server: RunningServer) -> None:
    code, stdout, stderr = await grpcurl(
        "-plaintext", "-d", '{"service": ""}', server.address, "grpc.health.v1.Health/Check"
    )
    assert code == 0, stderr
    assert json.loads(stdout) == {"status": "SERVING"}
    code, _, stderr = await grpcurl("-plaintext", server.address, "usermgmt.v1.ProbeService/Ready")
    assert code == 0, stderr


async def test_register_authenticate_and_read_me(server: RunningServer) -> None:
    username = unique("cli")
    body = json.dumps(
        {
            "username": username,
            "email": f"{username}@example.com",
            "password": "correct horse battery",
            "displayName": "CLI User",
        }
    )
    code, stdout, stderr = await grpcurl(
        "-plaintext", "-d", body, server.address, "usermgmt.v1.UserService/Register"
    )
    assert code == 0, stderr
    user = json.loads(stdout)["user"]
    assert user["username"] == username and user["state"] == "USER_STATE_ACTIVE"

    body = json.dumps({"login": username, "password": "correct horse battery"})
    code, stdout, stderr = await grpcurl(
        "-plaintext", "-d", body, server.address, "usermgmt.v1.AuthService/Authenticate"
    )
    assert code == 0, stderr
    auth = json.loads(stdout)
    assert auth["token_type"] == "Bearer"

    code, stdout, stderr = await grpcurl(
        "-plaintext",
        "-H",
        f"authorization: Bearer {auth['access_token']}",
        "-d",
        '{"user_id": "me"}',
        server.address,
        "usermgmt.v1.UserService/GetUser",
    )
    assert code == 0, stderr
    assert json.loads(stdout)["user"]["user_id"] == user["user_id"]


async def test_errors_show_their_details(server: RunningServer) -> None:
    body = json.dumps({"username": "x", "email": "nope", "password": "short"})
    code, _, stderr = await grpcurl(
        "-plaintext", "-d", body, server.address, "usermgmt.v1.UserService/Register"
    )
    assert code != 0
    assert "InvalidArgument" in stderr or "INVALID_ARGUMENT" in stderr
    assert "Traceback" not in stderr
