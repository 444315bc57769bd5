"""A steady client load through the load balancer: each client registers a user (with a
request_id, so retries are safe) and reads it back, again and again, on a channel that uses
the documented client retry policy."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field

import grpc

from tests.e2e.harness import bearer
from usermgmt.retry_policy import channel_options
from usermgmt.v1 import user_service_pb2, user_service_pb2_grpc

CALL_TIMEOUT = 10.0


@dataclass
class LoadReport:
    """What the clients saw: calls sent, answered OK, failed (by status), users registered."""

    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    registered: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Calls that failed after the retry policy was exhausted."""
        return sum(self.errors.values())

    def merge(self, other: LoadReport) -> None:
        """Add another client's figures."""
        self.sent += other.sent
        self.ok += other.ok
        self.errors.update(other.errors)
        self.registered += other.registered


class SteadyLoad:
    """``clients`` concurrent clients calling ``address`` until ``finish()``."""

    def __init__(self, address: str, admin_token: str, clients: int = 4) -> None:
        self._address = address
        self._token = admin_token
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(clients)]

    async def finish(self) -> LoadReport:
        """Stop after the calls in flight and add up what every client saw."""
        self._stop.set()
        report = LoadReport()
        for client in await asyncio.gather(*self._tasks):
            report.merge(client)
        return report

    async def _client(self, number: int) -> LoadReport:
        report = LoadReport()
        async with grpc.aio.insecure_channel(self._address, options=channel_options()) as channel:
            users = user_service_pb2_grpc.UserServiceStub(channel)
            while not self._stop.is_set():
                name = f"load-{number}-{uuid.uuid4().hex[:12]}"
                request = user_service_pb2.RegisterRequest(
                    username=name,
                    email=f"{name}@example.com",
                    password="correct horse battery staple",
                    request_id=str(uuid.uuid4()),
                )
                registered = await self._call(report, users.Register(request, timeout=CALL_TIMEOUT))
                if registered is None:
                    continue
                report.registered.append(registered.user.user_id)
                await self._call(
                    report,
                    users.GetUser(
                        user_service_pb2.GetUserRequest(user_id=registered.user.user_id),
                        metadata=bearer(self._token),
                        timeout=CALL_TIMEOUT,
                    ),
                )
        return report

    @staticmethod
    async def _call(report: LoadReport, call: object) -> object | None:
        report.sent += 1
        try:
            response = await call  # type: ignore[misc]
        except grpc.aio.AioRpcError as error:
            report.errors[f"{error.code().name}: {error.details()}"] += 1
            return None
        report.ok += 1
        return response
