"""The server as operators run it: configuration errors, embedded mode, SIGTERM draining."""

from __future__ import annotations

import asyncio
import re
import signal
import uuid

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.harness import (
    Api,
    bearer,
    create_table,
    expect_error,
    moto_settings,
    new_signing_key_pem,
    unique,
)
from tests.e2e.processes import clean_environment, run_command, server_process
from usermgmt.v1 import probe_service_pb2, probe_service_pb2_grpc, user_pb2, user_service_pb2
from usermgmt_server.adapters.dynamodb.clients import open_aws_clients
from usermgmt_server.adapters.dynamodb.schema import table_definition


async def test_missing_settings_exit_with_a_clear_message() -> None:
    code, _, stderr = await run_command(env=clean_environment())
    assert code == 2
    assert "USERMGMT_TABLE_NAME" in stderr and "AWS_REGION" in stderr
    assert "USERMGMT_JWT_PRIVATE_KEY" in stderr and "--embedded" in stderr
    assert "Traceback" not in stderr


async def test_invalid_setting_is_named() -> None:
    code, _, stderr = await run_command(env=clean_environment(USERMGMT_ARGON2_TIME_COST="zero"))
    assert code == 2 and "USERMGMT_ARGON2_TIME_COST" in stderr and "Traceback" not in stderr


async def test_embedded_mode_serves_with_nothing_configured() -> None:
    env = clean_environment(
        USERMGMT_LISTEN_ADDRESS="127.0.0.1:0",
        USERMGMT_ARGON2_MEMORY_KIB="1024",
        USERMGMT_REQUIRE_EMAIL_VERIFICATION="false",
    )
    async with server_process("--embedded", env=env) as server:
        assert any("in memory" in line for line in server.banner)
        async with grpc.aio.insecure_channel(server.address) as channel:
            api = Api(channel)
            registered, token = await api.new_user_with_token()
            me = await api.users.GetUser(
                user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token)
            )
            assert me.user.user_id == registered.user.user_id
        server.process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(server.process.wait(), 30) == 0


async def test_create_resources_is_idempotent(moto_endpoint: str) -> None:
    table = f"usermgmt-cli-{uuid.uuid4().hex[:8]}"
    env = clean_environment(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    args = (
        "create-resources",
        "--table-name",
        table,
        "--aws-region",
        "us-east-1",
        "--aws-endpoint-url",
        moto_endpoint,
    )
    for _ in range(2):
        code, stdout, stderr = await run_command(*args, env=env)
        assert code == 0, stderr
        assert f"table {table}: ready" in stdout
    async with open_aws_clients(moto_settings(moto_endpoint)) as aws:
        described = (await aws.dynamodb.describe_table(TableName=table))["Table"]
    expected = table_definition(table)
    assert described["KeySchema"] == expected["KeySchema"]
    assert {i["IndexName"] for i in described["GlobalSecondaryIndexes"]} == {
        i["IndexName"] for i in expected["GlobalSecondaryIndexes"]
    }


async def test_sigterm_drains_then_finishes_in_flight_calls(moto_endpoint: str) -> None:
    table = f"usermgmt-drain-{uuid.uuid4().hex[:8]}"
    await create_table(moto_endpoint, table)
    env = clean_environment(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=moto_endpoint,
        USERMGMT_TABLE_NAME=table,
        USERMGMT_LISTEN_ADDRESS="127.0.0.1:0",
        USERMGMT_JWT_PRIVATE_KEY=new_signing_key_pem(),
        USERMGMT_HMAC_SECRET="x" * 32,
        USERMGMT_DRAIN_SECONDS="1.5",
        USERMGMT_SHUTDOWN_GRACE="10",
        USERMGMT_HEALTH_INTERVAL="0.2",
        # A deliberately slow hash keeps a Register in flight across the drain period.
        USERMGMT_ARGON2_TIME_COST="12",
        USERMGMT_ARGON2_MEMORY_KIB="65536",
    )
    async with (
        server_process(env=env) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        probe = probe_service_pb2_grpc.ProbeServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        await probe.Ready(probe_service_pb2.ReadyRequest())
        in_flight = asyncio.ensure_future(Api(channel).register(unique("inflight")))
        await asyncio.sleep(0.2)
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        not_ready = await expect_error(probe.Ready(probe_service_pb2.ReadyRequest()))
        assert not_ready.code == grpc.StatusCode.UNAVAILABLE
        status = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
        registered = await asyncio.wait_for(in_flight, 30)
        assert registered.user.user_id
        assert await asyncio.wait_for(server.process.wait(), 30) == 0


async def test_embedded_mode_delivers_the_verification_code_on_the_console() -> None:
    env = clean_environment(
        USERMGMT_LISTEN_ADDRESS="127.0.0.1:0", USERMGMT_ARGON2_MEMORY_KIB="1024"
    )
    async with server_process("--embedded", env=env) as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            api = Api(channel)
            registered = await api.register()
            assert registered.user.state == user_pb2.USER_STATE_PENDING_VERIFICATION
            assert server.process.stdout is not None
            code = ""
            while not code:
                line = (await asyncio.wait_for(server.process.stdout.readline(), 30)).decode()
                assert line, "the server closed stdout before printing the code"
                match = re.search(r"account \S+: (\d{6})", line)
                code = match.group(1) if match else ""
            verified = await api.users.VerifyEmail(
                user_service_pb2.VerifyEmailRequest(login=registered.user.username, code=code)
            )
            assert verified.user.state == user_pb2.USER_STATE_ACTIVE
        server.process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(server.process.wait(), 30) == 0
