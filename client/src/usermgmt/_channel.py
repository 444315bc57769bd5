"""The gRPC channel: retry policy for UNAVAILABLE in the service config, keepalive, TLS."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from usermgmt._version import USER_AGENT
from usermgmt.retry_policy import MAX_ATTEMPTS, RETRIED_METHODS


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the channel retries calls that fail with UNAVAILABLE (gRFC A6 ``retryPolicy``).

    UNAVAILABLE means an instance is draining or gone, or storage or the hashing pool was
    momentarily unavailable. Only calls that are safe to repeat are retried
    (``usermgmt.retry_policy.RETRIED_METHODS``: reads, and ``Register``, which the client always
    sends with a ``request_id``); a repeated ``RefreshToken`` would revoke the session, and other
    writes would fail their second attempt. gRPC itself still retries any call that never left
    the client. Attempt ``n`` waits a random time up to
    ``min(initial_backoff * backoff_multiplier**(n-1), max_backoff)``; ``max_attempts`` counts
    the first attempt and is capped at 5 by gRPC. ``throttle_max_tokens`` and
    ``throttle_token_ratio`` set ``retryThrottling``: each failure costs a token, each success
    returns ``throttle_token_ratio``, and retries pause while half or fewer are left, so a
    failing service is not flooded; ``None`` turns throttling off. The defaults give exactly
    ``usermgmt.retry_policy.service_config()``.
    """

    max_attempts: int = MAX_ATTEMPTS
    initial_backoff: float = 0.1
    max_backoff: float = 1.0
    backoff_multiplier: float = 2
    throttle_max_tokens: int | None = 10
    throttle_token_ratio: float = 0.1

    def __post_init__(self) -> None:
        if not 2 <= self.max_attempts <= 5:
            raise ValueError("max_attempts must be between 2 and 5 (gRPC's limit)")
        if self.initial_backoff <= 0 or self.max_backoff <= 0 or self.backoff_multiplier <= 0:
            raise ValueError("backoff values must be positive")

    def service_config(self) -> dict[str, Any]:
        """The ``grpc.service_config`` document (as a dict) that enforces this policy."""
        config: dict[str, Any] = {
            "methodConfig": [
                {
                    "name": [
                        {"service": service, "method": method}
                        for service, methods in RETRIED_METHODS.items()
                        for method in methods
                    ],
                    "retryPolicy": {
                        "maxAttempts": self.max_attempts,
                        "initialBackoff": _duration(self.initial_backoff),
                        "maxBackoff": _duration(self.max_backoff),
                        "backoffMultiplier": self.backoff_multiplier,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
        if self.throttle_max_tokens is not None:
            config["retryThrottling"] = {
                "maxTokens": self.throttle_max_tokens,
                "tokenRatio": self.throttle_token_ratio,
            }
        return config


@dataclass(frozen=True, slots=True)
class Keepalive:
    """HTTP/2 keepalive pings, sent only while calls are in flight.

    The default interval (5 minutes) is the smallest gRPC servers accept without penalty
    (``grpc.http2.min_ping_interval_without_data_ms``); pinging more often gets the connection
    closed with ``too_many_pings``. Pings detect a dead connection during a long call; they do
    not keep an idle connection open through a load balancer (an AWS ALB does not count them).
    """

    interval: float = 300.0
    timeout: float = 20.0

    def channel_options(self) -> list[tuple[str, Any]]:
        """The channel arguments for this keepalive setting."""
        return [
            ("grpc.keepalive_time_ms", round(self.interval * 1000)),
            ("grpc.keepalive_timeout_ms", round(self.timeout * 1000)),
            ("grpc.keepalive_permit_without_calls", 0),
        ]


def channel_options(
    retry: RetryPolicy | None, keepalive: Keepalive | None, extra: Sequence[tuple[str, Any]] = ()
) -> list[tuple[str, Any]]:
    """Every channel argument the client sets (``extra`` last, so it wins)."""
    options: list[tuple[str, Any]] = [("grpc.primary_user_agent", USER_AGENT)]
    if retry is None:
        options.append(("grpc.enable_retries", 0))
    else:
        options += [
            ("grpc.enable_retries", 1),
            ("grpc.service_config", json.dumps(retry.service_config())),
        ]
    if keepalive is not None:
        options += keepalive.channel_options()
    options += list(extra)
    return options


def open_channel(
    target: str,
    *,
    tls: bool | grpc.ChannelCredentials = False,
    retry: RetryPolicy | None = RetryPolicy(),
    keepalive: Keepalive | None = Keepalive(),
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """A ``grpc.aio`` channel to ``target`` with the client's retry policy and keepalive.

    ``tls=True`` uses the system's root certificates (an ALB's HTTPS listener); pass
    ``grpc.ssl_channel_credentials(root_certificates=…)`` for a private CA; ``False`` is
    plaintext (local development).
    """
    arguments = channel_options(retry, keepalive, options)
    if tls is False:
        return grpc.aio.insecure_channel(target, options=arguments)
    credentials = grpc.ssl_channel_credentials() if tls is True else tls
    return grpc.aio.secure_channel(target, credentials, options=arguments)


def _duration(seconds: float) -> str:
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
