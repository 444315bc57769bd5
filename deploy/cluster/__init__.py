"""The local cluster: an AWS emulator, several server instances and Envoy as their load
balancer (``make cluster``, or ``Cluster`` from tests)."""

from deploy.cluster.cluster import Cluster, ClusterSettings, HostStats
from deploy.cluster.envoy_config import HealthCheck
from deploy.cluster.processes import ClusterError

__all__ = ["Cluster", "ClusterError", "ClusterSettings", "HealthCheck", "HostStats"]
