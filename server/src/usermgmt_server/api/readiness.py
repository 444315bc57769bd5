"""Whether this instance serves traffic, published to gRPC health checking and the probe RPC."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc
from grpc_health.v1 import health, health_pb2

from usermgmt.v1 import probe_service_pb2, probe_service_pb2_grpc
from usermgmt_server.api.status import rich_status

logger = logging.getLogger(__name__)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Readiness:
    """Tracks storage reachability and draining; keeps the health service in step.

    The instance serves while storage answers and it is not draining. Every service name given
    (plus ``""``, the whole server) reports the same status.
    """

    def __init__(self, health_servicer: health.aio.HealthServicer, services: list[str]) -> None:
        self._health = health_servicer
        self._services = ["", *services]
        self._storage_ok = False
        self._draining = False

    @property
    def serving(self) -> bool:
        """Whether the instance should receive traffic now."""
        return self._storage_ok and not self._draining

    async def storage_reachable(self, reachable: bool) -> None:
        """Record the outcome of a storage check."""
        if reachable != self._storage_ok:
            level = logging.INFO if reachable else logging.WARNING
            logger.log(level, "storage reachable: %s", reachable)
        self._storage_ok = reachable
        await self._publish()

    async def start_draining(self) -> None:
        """Stop accepting new traffic for good (shutdown)."""
        self._draining = True
        await self._health.enter_graceful_shutdown()

    async def _publish(self) -> None:
        status = _SERVING if self.serving else _NOT_SERVING
        for service in self._services:
            await self._health.set(service, status)


async def monitor_storage(
    readiness: Readiness, check: Callable[[], Awaitable[bool]], interval: float
) -> None:
    """Check storage every ``interval`` seconds, forever (cancel the task to stop)."""
    while True:
        try:
            reachable = await check()
        except Exception:
            logger.exception("storage check failed")
            reachable = False
        await readiness.storage_reachable(reachable)
        await asyncio.sleep(interval)


class ProbeServicer(probe_service_pb2_grpc.ProbeServiceServicer):
    """Answers OK while the instance serves, UNAVAILABLE otherwise (load balancers read codes)."""

    def __init__(self, readiness: Readiness) -> None:
        self._readiness = readiness

    async def Ready(
        self, request: probe_service_pb2.ReadyRequest, context: grpc.aio.ServicerContext
    ) -> probe_service_pb2.ReadyResponse:
        if not self._readiness.serving:
            status = rich_status(
                grpc.StatusCode.UNAVAILABLE, "this instance is not serving", "NOT_SERVING"
            )
            await context.abort(status.code, status.details, status.trailing_metadata)
        return probe_service_pb2.ReadyResponse()
