"""``usermgmt-server --workers 2``: one port, two processes that both serve, a killed worker
restarted, SIGTERM draining every worker, workers that stop when their supervisor dies, and
start-up failures reported by the supervisor."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.cluster.logs import process_exited, records, served_by, worker_pids
from tests.e2e.harness import (
    Api,
    create_table,
    expect_error,
    server_environment,
    unique,
    wait_for,
)
from tests.e2e.processes import ServerProcess, clean_environment, run_command, server_process
from usermgmt.v1 import probe_service_pb2, probe_service_pb2_grpc

READY = "/usermgmt.v1.ProbeService/Ready"


def workers_environment(moto_endpoint: str, table: str, **overrides: str) -> dict[str, str]:
    return clean_environment(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        **server_environment(
            moto_endpoint,
            table,
            USERMGMT_WORKERS="2",
            USERMGMT_LOG_LEVEL="DEBUG",
            USERMGMT_LOG_FORMAT="json",
            **overrides,
        ),
    )


@pytest.fixture
async def two_workers(moto_endpoint: str) -> AsyncIterator[ServerProcess]:
    table = f"usermgmt-workers-{uuid.uuid4().hex[:8]}"
    await create_table(moto_endpoint, table)
    async with server_process(env=workers_environment(moto_endpoint, table)) as server:
        assert "(2 workers)" in server.banner[-1]
        assert await wait_for(lambda: _both_serving(server), within=10)
        yield server
        if server.process.returncode is None:
            server.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(server.process.wait(), 30) == 0


async def _both_serving(server: ServerProcess) -> bool:
    return len(worker_pids(server.stderr)) == 2


async def probe_on_new_connections(address: str, count: int) -> None:
    """One Ready call on each of ``count`` fresh TCP connections.

    The kernel spreads connections (not calls) over the workers' sockets, and gRPC shares one
    connection between channels to the same address unless each has its own subchannel pool.
    """
    for _ in range(count):
        async with grpc.aio.insecure_channel(
            address, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            await probe_service_pb2_grpc.ProbeServiceStub(channel).Ready(
                probe_service_pb2.ReadyRequest(), timeout=10
            )


async def test_both_workers_serve_one_port(two_workers: ServerProcess) -> None:
    server = two_workers
    pids = worker_pids(server.stderr)
    assert sorted(pids) == [0, 1]
    assert server.process.pid not in pids.values()
    await probe_on_new_connections(server.address, 24)

    async def all_logged() -> bool:
        return len(served_by(server.stderr, READY)) >= 24

    assert await wait_for(all_logged, within=10)
    served = served_by(server.stderr, READY)
    per_worker = {index: sum(1 for w, _ in served if w == index) for index in pids}
    print(f"\n24 connections served per worker: {per_worker}")
    assert set(served) == {(index, pid) for index, pid in pids.items()}


async def test_a_killed_worker_is_restarted_and_serves_again(two_workers: ServerProcess) -> None:
    server = two_workers
    before = worker_pids(server.stderr)
    os.kill(before[0], signal.SIGKILL)

    async def restarted() -> bool:
        return worker_pids(server.stderr).get(0) not in (None, before[0])

    assert await wait_for(restarted, within=20), "worker 0 was not restarted"
    after = worker_pids(server.stderr)
    assert after[1] == before[1]
    assert process_exited(before[0])
    warnings = [
        r for r in records(server.stderr) if r.get("message", "").startswith("worker exited")
    ]
    assert [(w["worker"], w["worker_pid"], w["code"]) for w in warnings] == [
        (0, before[0], -signal.SIGKILL)
    ]
    assert all(r["role"] == "supervisor" for r in warnings)

    async def new_worker_served() -> bool:
        await probe_on_new_connections(server.address, 4)
        return (0, after[0]) in served_by(server.stderr, READY)

    assert await wait_for(new_worker_served, within=20, every=0)
    assert server.process.returncode is None


async def test_sigterm_drains_every_worker_and_finishes_in_flight_calls(
    moto_endpoint: str,
) -> None:
    table = f"usermgmt-workers-{uuid.uuid4().hex[:8]}"
    await create_table(moto_endpoint, table)
    env = workers_environment(
        moto_endpoint,
        table,
        USERMGMT_DRAIN_SECONDS="1.5",
        USERMGMT_SHUTDOWN_GRACE="10",
        # A deliberately slow hash keeps a Register in flight across the drain period.
        USERMGMT_ARGON2_TIME_COST="12",
        USERMGMT_ARGON2_MEMORY_KIB="65536",
    )
    async with server_process(env=env) as server:
        assert await wait_for(lambda: _both_serving(server), within=10)
        pids = worker_pids(server.stderr)
        async with grpc.aio.insecure_channel(server.address) as channel:
            in_flight = asyncio.ensure_future(Api(channel).register(unique("inflight")))
            await asyncio.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            # Whichever worker a new connection reaches, it is draining.
            async with grpc.aio.insecure_channel(
                server.address, options=[("grpc.use_local_subchannel_pool", 1)]
            ) as fresh:
                not_ready = await expect_error(
                    probe_service_pb2_grpc.ProbeServiceStub(fresh).Ready(
                        probe_service_pb2.ReadyRequest()
                    )
                )
                assert not_ready.code == grpc.StatusCode.UNAVAILABLE
                health = await health_pb2_grpc.HealthStub(fresh).Check(
                    health_pb2.HealthCheckRequest(service="")
                )
                assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
            registered = await asyncio.wait_for(in_flight, 30)
            assert registered.user.user_id
        assert await asyncio.wait_for(server.process.wait(), 30) == 0
        assert all(process_exited(pid) for pid in pids.values())
        drained = {r["worker"] for r in records(server.stderr) if r.get("message") == "draining"}
        assert drained == {0, 1}


async def test_workers_stop_when_the_supervisor_is_killed(two_workers: ServerProcess) -> None:
    server = two_workers
    pids = worker_pids(server.stderr)
    server.process.send_signal(signal.SIGKILL)
    await asyncio.wait_for(server.process.wait(), 10)

    async def workers_gone() -> bool:
        return all(process_exited(pid) for pid in pids.values())

    assert await wait_for(workers_gone, within=20)
    orphaned = [
        r for r in records(server.stderr) if r.get("message") == "the supervisor is gone; stopping"
    ]
    assert {r["worker"] for r in orphaned} == {0, 1}


async def test_a_worker_that_cannot_start_stops_the_supervisor(moto_endpoint: str) -> None:
    env = workers_environment(
        moto_endpoint,
        f"usermgmt-workers-{uuid.uuid4().hex[:8]}",
        # Nothing listens there: the bootstrap administrator cannot be written.
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        USERMGMT_AWS_MAX_ATTEMPTS="1",
    )
    code, stdout, stderr = await run_command(env=env)
    assert code == 1
    assert "usermgmt listening" not in stdout
    assert "exited with code 1 before serving" in stderr


async def test_a_taken_port_is_refused_by_the_supervisor(moto_endpoint: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = workers_environment(
            moto_endpoint, "unused", USERMGMT_LISTEN_ADDRESS=f"127.0.0.1:{port}"
        )
        code, _, stderr = await run_command(env=env)
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in stderr and "Traceback" not in stderr


async def test_embedded_mode_refuses_several_workers() -> None:
    code, _, stderr = await run_command("--embedded", "--workers", "2", env=clean_environment())
    assert code == 2
    assert "embedded mode runs one process" in stderr and "USERMGMT_WORKERS" in stderr
