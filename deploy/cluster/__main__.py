"""``python -m deploy.cluster`` (``make cluster``): run the local cluster until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

from deploy.cluster.cluster import Cluster, ClusterSettings
from deploy.cluster.processes import ClusterError


def build_parser() -> argparse.ArgumentParser:
    """The command's flags."""
    parser = argparse.ArgumentParser(
        prog="python -m deploy.cluster",
        description="Run an AWS emulator, several usermgmt-server instances and Envoy (the "
        "load balancer) on loopback. USERMGMT_* variables in the environment reach every "
        "instance (e.g. USERMGMT_BOOTSTRAP_ADMIN_USERNAME/PASSWORD).",
    )
    parser.add_argument("--port", type=int, default=50050, help="Envoy's gRPC port (50050)")
    parser.add_argument("--admin-port", type=int, default=9901, help="Envoy's admin port (9901)")
    parser.add_argument("--instances", type=int, default=3, help="server instances (3)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per instance (1)")
    parser.add_argument("--log-dir", type=Path, help="where logs go (default: a new temp dir)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the cluster, print where everything is, stop it all on Ctrl-C or SIGTERM."""
    arguments = build_parser().parse_args(argv)
    log_dir = arguments.log_dir or Path(tempfile.mkdtemp(prefix="usermgmt-cluster-"))
    settings = ClusterSettings(
        instances=arguments.instances,
        workers_per_instance=arguments.workers,
        envoy_port=arguments.port,
        admin_port=arguments.admin_port,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    cluster = Cluster(settings, log_dir)
    print(f"starting the cluster; logs in {log_dir}", flush=True)
    try:
        cluster.start()
    except ClusterError as error:
        print(f"cluster: {error}", file=sys.stderr)
        return 1
    try:
        print(_endpoints(cluster), flush=True)
        reported: set[int] = set()
        while not stop.wait(1.0):
            for index in range(settings.instances):
                code = cluster.instance(index).exit_code
                if code is not None and index not in reported:
                    reported.add(index)
                    print(f"instance {index} exited with code {code}", flush=True)
    finally:
        print("stopping the cluster", flush=True)
        cluster.stop()
    return 0


def _endpoints(cluster: Cluster) -> str:
    instances = "\n".join(
        f"    instance {index}: {cluster.instance_address(index)}  "
        f"(pid {cluster.instance(index).pid}, log {cluster.instance(index).log_path})"
        for index in range(cluster.settings.instances)
    )
    return f"""usermgmt cluster ready
  gRPC through Envoy (the load balancer): {cluster.envoy_address}
      grpcurl -plaintext {cluster.envoy_address} list
  Envoy admin (health, per-instance stats): {cluster.admin_url}/clusters
  instances (direct):
{instances}
  AWS emulator: {cluster.aws_endpoint}
      table {cluster.settings.table_name}, topic {cluster.topic_arn}
  logs: {cluster.log_dir}
Ctrl-C stops everything."""


if __name__ == "__main__":
    sys.exit(main())
