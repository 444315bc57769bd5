"""The local cluster under a steady client load through Envoy (the load balancer): calls
spread over every instance; an instance stopped with SIGTERM costs no call; one killed with
SIGKILL costs no call beyond the client retry budget and loses no acknowledged write; a
restarted instance receives calls again. Each test prints its figures."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from deploy.cluster import Cluster, ClusterSettings
from tests.cluster.load import LoadReport, SteadyLoad
from tests.cluster.logs import records
from tests.e2e.harness import ADMIN_PASSWORD, ADMIN_USERNAME, FAST_ARGON2, scan_table
from usermgmt.v1 import auth_service_pb2, auth_service_pb2_grpc

pytestmark = pytest.mark.slow

INSTANCES = 3
USER_CALLS = "/usermgmt.v1.UserService/"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    settings = ClusterSettings(
        instances=INSTANCES,
        instance_environment={
            **FAST_ARGON2,
            "USERMGMT_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USERNAME,
            "USERMGMT_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "USERMGMT_REQUIRE_EMAIL_VERIFICATION": "false",
            "USERMGMT_RATE_LIMIT_PER_MINUTE": "0",
            "USERMGMT_HEALTH_INTERVAL": "0.5",
            # One line per call ("rpc"), which tells which instance served it.
            "USERMGMT_LOG_LEVEL": "DEBUG",
        },
    )
    with Cluster(settings, tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
async def admin_token(cluster: Cluster) -> str:
    async with grpc.aio.insecure_channel(cluster.envoy_address) as channel:
        session = await auth_service_pb2_grpc.AuthServiceStub(channel).Authenticate(
            auth_service_pb2.AuthenticateRequest(login=ADMIN_USERNAME, password=ADMIN_PASSWORD)
        )
    return session.access_token


@pytest.fixture
async def whole_cluster(cluster: Cluster) -> AsyncIterator[Cluster]:
    """The cluster with every instance serving, before and after the test."""
    await _restart_exited(cluster)
    yield cluster
    await _restart_exited(cluster)


async def _restart_exited(cluster: Cluster) -> None:
    for index in range(INSTANCES):
        if not cluster.instance(index).running:
            await asyncio.to_thread(cluster.restart_instance, index)


class Window:
    """Calls each instance served (its ``rpc`` log lines) from now on."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._offsets = [cluster.instance(i).log_path.stat().st_size for i in range(INSTANCES)]

    def served(self) -> dict[int, int]:
        return {
            index: sum(
                1
                for record in records(_read_from(self._cluster.instance(index).log_path, offset))
                if record.get("message") == "rpc"
                and str(record.get("method", "")).startswith(USER_CALLS)
            )
            for index, offset in enumerate(self._offsets)
        }


def _read_from(path: Path, offset: int) -> list[str]:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace").splitlines()


async def lost_writes(cluster: Cluster, report: LoadReport) -> int:
    """Registers answered OK whose user is not in the table."""
    items = await scan_table(cluster.aws_endpoint, cluster.settings.table_name)
    stored = {str(item["pk"]).removeprefix("USER#") for item in items}
    return sum(1 for user_id in report.registered if user_id not in stored)


def summary(title: str, report: LoadReport, served: dict[int, int], **figures: object) -> str:
    spread = ", ".join(f"instance {i}: {n}" for i, n in served.items())
    errors = dict(report.errors) or "none"
    extra = "".join(f"\n  {name.replace('_', ' ')}: {value}" for name, value in figures.items())
    return (
        f"\n[{title}] requests sent {report.sent}, OK {report.ok}, errors {report.failed}"
        f" ({errors}), registers OK {len(report.registered)}"
        f"\n  calls served per instance (instance logs): {spread}{extra}"
    )


def retry_figures(cluster: Cluster, before: dict[str, int]) -> dict[str, int]:
    after = cluster.envoy_counters()
    names = (
        "upstream_rq_retry",
        "upstream_rq_retry_success",
        "upstream_cx_connect_fail",
        "outlier_detection.ejections_enforced_total",
        "health_check.failure",
    )
    return {name: after.get(name, 0) - before.get(name, 0) for name in names}


async def test_calls_spread_over_every_instance(whole_cluster: Cluster, admin_token: str) -> None:
    cluster = whole_cluster
    window = Window(cluster)
    load = SteadyLoad(cluster.envoy_address, admin_token)
    await asyncio.sleep(6)
    report = await load.finish()
    served = window.served()
    envoy = {i: host.requests for i, host in cluster.hosts().items()}
    print(summary("spread", report, served, envoy_requests_per_instance_since_start=envoy))
    assert report.failed == 0
    assert report.ok == report.sent > 0
    assert all(served[i] > 0 for i in range(INSTANCES)), served
    assert sum(served.values()) >= report.ok
    assert await lost_writes(cluster, report) == 0


async def test_an_instance_stopped_with_sigterm_costs_no_call(
    whole_cluster: Cluster, admin_token: str
) -> None:
    cluster = whole_cluster
    before = cluster.envoy_counters()
    window = Window(cluster)
    load = SteadyLoad(cluster.envoy_address, admin_token)
    await asyncio.sleep(2)
    cluster.terminate_instance(0)
    code = await asyncio.to_thread(cluster.instance(0).wait, 30)
    await asyncio.sleep(2)
    report = await load.finish()
    served = window.served()
    lost = await lost_writes(cluster, report)
    print(
        summary(
            "SIGTERM instance 0",
            report,
            served,
            lost_writes=lost,
            exit_code_of_instance_0=code,
            **retry_figures(cluster, before),
        )
    )
    assert code == 0
    assert report.failed == 0, report.errors
    assert report.ok == report.sent > 0
    assert lost == 0
    assert served[1] > 0 and served[2] > 0


async def test_an_instance_killed_with_sigkill_loses_no_acknowledged_write(
    whole_cluster: Cluster, admin_token: str
) -> None:
    cluster = whole_cluster
    before = cluster.envoy_counters()
    window = Window(cluster)
    load = SteadyLoad(cluster.envoy_address, admin_token)
    await asyncio.sleep(2)
    cluster.kill_instance(1)
    code = await asyncio.to_thread(cluster.instance(1).wait, 10)
    await asyncio.sleep(4)
    report = await load.finish()
    served = window.served()
    lost = await lost_writes(cluster, report)
    print(
        summary(
            "SIGKILL instance 1",
            report,
            served,
            lost_writes=lost,
            **retry_figures(cluster, before),
        )
    )
    assert code == -signal.SIGKILL
    # Envoy retries what is safe to repeat; the clients' retry policy absorbs the rest.
    assert report.failed == 0, report.errors
    assert lost == 0
    assert served[0] > 0 and served[2] > 0


async def test_a_killed_instance_restarted_receives_calls_again(
    whole_cluster: Cluster, admin_token: str
) -> None:
    cluster = whole_cluster
    cluster.kill_instance(2)
    await asyncio.to_thread(cluster.instance(2).wait, 10)
    await asyncio.to_thread(cluster.wait_until_unhealthy, 2)
    await asyncio.to_thread(cluster.restart_instance, 2)
    window = Window(cluster)
    load = SteadyLoad(cluster.envoy_address, admin_token)
    await asyncio.sleep(4)
    report = await load.finish()
    served = window.served()
    print(summary("instance 2 restarted", report, served, healthy=cluster.hosts()[2].healthy))
    assert report.failed == 0, report.errors
    assert served[2] > 0
    assert await lost_writes(cluster, report) == 0
