"""The retry policy clients should give their channel (a gRPC service config).

Only calls that are safe to repeat are retried, and only on UNAVAILABLE (instance draining or
gone, storage or hashing momentarily unavailable): reads, and ``Register``, which is
idempotent when it carries a ``request_id`` (a replay returns the first result). Every other
call is at most retried transparently by gRPC when it never left the client. Retries back
off exponentially and are throttled per channel, so a failing service is not flooded.

Use it as ``grpc.aio.insecure_channel(target, options=channel_options())``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_ATTEMPTS", "RETRIED_METHODS", "channel_options", "service_config"]

# Attempts per call, the first included (gRPC caps this at 5).
MAX_ATTEMPTS = 4

RETRIED_METHODS: dict[str, tuple[str, ...]] = {
    "usermgmt.v1.UserService": ("Register", "GetUser", "ListUsers"),
    "usermgmt.v1.AuthService": ("GetJwks",),
    "usermgmt.v1.ProbeService": ("Ready",),
}


def service_config(max_attempts: int = MAX_ATTEMPTS) -> dict[str, Any]:
    """The service config: retry policy for ``RETRIED_METHODS`` and channel-wide throttling."""
    return {
        "methodConfig": [
            {
                "name": [
                    {"service": service, "method": method}
                    for service, methods in RETRIED_METHODS.items()
                    for method in methods
                ],
                "retryPolicy": {
                    "maxAttempts": max_attempts,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
        # Each failure costs a token, each success returns 0.1; below half of the tokens the
        # channel stops retrying until successes refill them.
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }


def channel_options(max_attempts: int = MAX_ATTEMPTS) -> list[tuple[str, str | int]]:
    """Channel options that install the service config and enable retries."""
    return [
        ("grpc.service_config", json.dumps(service_config(max_attempts))),
        ("grpc.enable_retries", 1),
    ]
