"""The async client: one channel, the UserService and AuthService calls, health."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc

from usermgmt._auth import AuthClient
from usermgmt._channel import Keepalive, RetryPolicy, open_channel
from usermgmt._health import HEALTH_CHECK_METHOD, HealthCheckRequest, HealthCheckResponse
from usermgmt._health import status_name as health_status_name
from usermgmt._session import Session
from usermgmt._transport import Transport
from usermgmt._users import UsersClient
from usermgmt.v1 import probe_service_pb2

DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT = 10.0


class UsermgmtClient:
    """An async client of the usermgmt service over one gRPC channel.

    ::

        async with UsermgmtClient("localhost:50051") as client:
            await client.auth.login("alice", password)
            me = await client.users.get("me")

    ``tls``: ``False`` for plaintext (local), ``True`` for TLS with the system's roots (an ALB's
    HTTPS listener) or ``grpc.ChannelCredentials``. ``timeout`` is the default deadline of each
    call in seconds (``None``: none). ``retry`` is the channel's policy for UNAVAILABLE
    (``None`` turns retries off) and ``keepalive`` its ping setting. ``session`` signs calls in
    with existing tokens (``login`` sets one). ``channel`` uses an existing channel instead of
    opening one (the client then does not close it).
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        tls: bool | grpc.ChannelCredentials = False,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = RetryPolicy(),  # noqa: B008 - immutable
        keepalive: Keepalive | None = Keepalive(),  # noqa: B008 - immutable
        session: Session | None = None,
        options: Sequence[tuple[str, Any]] = (),
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self.target = target
        self._owns_channel = channel is None
        if channel is None:
            channel = open_channel(
                target, tls=tls, retry=retry, keepalive=keepalive, options=options
            )
        self._transport = Transport(channel, timeout=timeout, session=session)
        self.users = UsersClient(self._transport)
        self.auth = AuthClient(self._transport)

    @property
    def channel(self) -> grpc.aio.Channel:
        """The underlying channel."""
        return self._transport.channel

    @property
    def session(self) -> Session | None:
        """The signed-in session whose access token calls send, or ``None``."""
        return self._transport.session

    @session.setter
    def session(self, session: Session | None) -> None:
        self._transport.session = session

    async def ready(self, *, timeout: float | None = None) -> None:
        """Return when the instance serves traffic (ProbeService/Ready); raise ``NotServing``
        or ``Unavailable`` otherwise."""
        await self._transport.call(
            self._transport.probe.Ready,
            probe_service_pb2.ReadyRequest(),
            authenticated=False,
            timeout=timeout,
        )

    async def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """The standard health status of ``service`` (``""``: the whole server): ``SERVING``,
        ``NOT_SERVING``, … (grpc.health.v1.Health/Check)."""
        check = self.channel.unary_unary(
            HEALTH_CHECK_METHOD,
            request_serializer=HealthCheckRequest.SerializeToString,
            response_deserializer=HealthCheckResponse.FromString,
        )
        response = await self._transport.call(
            check, HealthCheckRequest(service=service), authenticated=False, timeout=timeout
        )
        return health_status_name(response.status)

    async def close(self, grace: float | None = None) -> None:
        """Close the channel (if the client opened it); calls in flight are cancelled."""
        if self._owns_channel:
            await self._transport.channel.close(grace)

    async def __aenter__(self) -> UsermgmtClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"UsermgmtClient(target={self.target!r}, session={self.session!r})"
