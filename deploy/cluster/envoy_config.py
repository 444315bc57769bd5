"""The Envoy bootstrap of the local cluster: Envoy plays the AWS ALB in front of the instances.

Like the ALB it speaks HTTP/2 to the instances, health-checks them with gRPC (the standard
Health service, which reports NOT_SERVING while an instance drains), closes idle connections
after 60 s, and appends the client address to x-forwarded-for. Beyond the ALB it retries:
calls that are safe to repeat (reads, and Register, idempotent by its request_id) on
UNAVAILABLE or a reset; every other call only when it provably never reached an instance.
It also ejects instances that keep failing (outlier detection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLUSTER = "usermgmt"
ALB_IDLE_TIMEOUT = "60s"

# Calls whose repetition cannot change the outcome: reads, and Register with its request_id.
SAFE_TO_REPEAT = (
    "/usermgmt.v1.UserService/Register",
    "/usermgmt.v1.UserService/GetUser",
    "/usermgmt.v1.UserService/ListUsers",
    "/usermgmt.v1.AuthService/GetJwks",
    "/usermgmt.v1.ProbeService/Ready",
)
SAFE_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
RETRY_SAFE_CALLS = "unavailable,reset,connect-failure,refused-stream"
# The request never reached an instance: any call may be sent to another one.
RETRY_ANY_CALL = "connect-failure,refused-stream,reset-before-request"


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """Active gRPC health checking of every instance."""

    interval_s: float = 0.5
    timeout_s: float = 1.0
    unhealthy_threshold: int = 2
    healthy_threshold: int = 2


def _address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _retry_policy(retry_on: str) -> dict[str, Any]:
    return {
        "retry_on": retry_on,
        "num_retries": 2,
        # Try another instance than the one that just failed.
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/"
                    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                },
            }
        ],
        "host_selection_retry_max_attempts": 5,
        "retry_back_off": {"base_interval": "0.025s", "max_interval": "0.25s"},
    }


def _route(match: dict[str, Any], retry_on: str) -> dict[str, Any]:
    return {
        "match": match,
        "route": {
            "cluster": CLUSTER,
            "timeout": "30s",
            # Honour the client's deadline (grpc-timeout), up to the route timeout.
            "max_stream_duration": {"grpc_timeout_header_max": "30s"},
            "retry_policy": _retry_policy(retry_on),
        },
    }


def envoy_bootstrap(
    *,
    listen: tuple[str, int],
    admin: tuple[str, int],
    instances: list[tuple[str, int]],
    health: HealthCheck | None = None,
) -> dict[str, Any]:
    """The bootstrap configuration (JSON-ready) for ``instances`` behind ``listen``."""
    health = health or HealthCheck()
    manager = {
        "@type": "type.googleapis.com/"
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        # Plaintext gRPC clients speak HTTP/2 with prior knowledge.
        "codec_type": "HTTP2",
        "use_remote_address": True,
        "common_http_protocol_options": {"idle_timeout": ALB_IDLE_TIMEOUT},
        "route_config": {
            "name": CLUSTER,
            "virtual_hosts": [
                {
                    "name": CLUSTER,
                    "domains": ["*"],
                    "routes": [
                        *(_route({"path": path}, RETRY_SAFE_CALLS) for path in SAFE_TO_REPEAT),
                        *(_route({"prefix": p}, RETRY_SAFE_CALLS) for p in SAFE_PREFIXES),
                        _route({"prefix": "/"}, RETRY_ANY_CALL),
                    ],
                }
            ],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    cluster = {
        "name": CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/"
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
                "common_http_protocol_options": {"idle_timeout": ALB_IDLE_TIMEOUT},
            }
        },
        "load_assignment": {
            "cluster_name": CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _address(host, port)}} for host, port in instances
                    ]
                }
            ],
        },
        "health_checks": [
            {
                "timeout": _seconds(health.timeout_s),
                "interval": _seconds(health.interval_s),
                # Envoy checks hosts without traffic only once a minute by default; the ALB
                # checks at its interval whatever the traffic.
                "no_traffic_interval": _seconds(health.interval_s),
                "no_traffic_healthy_interval": _seconds(health.interval_s),
                "unhealthy_threshold": health.unhealthy_threshold,
                "healthy_threshold": health.healthy_threshold,
                "grpc_health_check": {},
            }
        ],
        # UNAVAILABLE answers count as 503 (gateway failures), connection failures too.
        "outlier_detection": {
            "consecutive_gateway_failure": 3,
            "enforcing_consecutive_gateway_failure": 100,
            "interval": "1s",
            "base_ejection_time": "5s",
            "max_ejection_percent": 50,
        },
        # Envoy allows 3 concurrent retries per cluster by default: too few when an instance
        # dies with several calls in flight.
        "circuit_breakers": {"thresholds": [{"max_retries": 100}]},
    }
    return {
        "admin": {"address": _address(*admin)},
        "static_resources": {
            "listeners": [
                {
                    "name": "grpc",
                    "address": _address(*listen),
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": manager,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [cluster],
        },
    }
