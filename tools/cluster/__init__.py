"""The local cluster: an AWS emulator, several server instances and Envoy as their load
balancer (``make cluster``, or ``Cluster`` from tests)."""

from tools.cluster.cluster import Cluster, ClusterSettings, HostStats
from tools.cluster.envoy_config import HealthCheck
from tools.cluster.processes import ClusterError

__all__ = ["Cluster", "ClusterError", "ClusterSettings", "HealthCheck", "HostStats"]
