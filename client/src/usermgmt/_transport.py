"""One channel's calls: deadlines, bearer metadata, token renewal and typed errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from usermgmt._errors import (
    InvalidRefreshToken,
    Unauthenticated,
    UsermgmtError,
    error_from_rpc_error,
)
from usermgmt._session import Session
from usermgmt.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    probe_service_pb2_grpc,
    session_pb2,
    user_service_pb2_grpc,
)

Response = TypeVar("Response")
Method = Callable[..., Awaitable[Response]]


class Transport:
    """The stubs of one channel plus what every call needs: the default deadline and the
    session whose access token authenticates calls."""

    def __init__(
        self, channel: grpc.aio.Channel, *, timeout: float | None, session: Session | None
    ) -> None:
        self.channel = channel
        self.timeout = timeout
        self.session = session
        self.users = user_service_pb2_grpc.UserServiceStub(channel)
        self.auth = auth_service_pb2_grpc.AuthServiceStub(channel)
        self.probe = probe_service_pb2_grpc.ProbeServiceStub(channel)

    async def call(
        self,
        method: Method[Response],
        request: Any,
        *,
        authenticated: bool = True,
        timeout: float | None = None,
    ) -> Response:
        """Call ``method`` with ``request``; with ``authenticated``, send the session's access
        token, renewing it shortly before it expires or once after an UNAUTHENTICATED answer.

        ``timeout`` (seconds) overrides the client's default deadline for this call. Raises a
        ``UsermgmtError`` subclass on failure.
        """
        session = self.session if authenticated else None
        if session is None:
            return await self.invoke(method, request, None, timeout)
        if session.needs_refresh():
            await self._renew_ahead(session)
        token = session.access_token
        try:
            return await self.invoke(method, request, token, timeout)
        except Unauthenticated as error:
            # Only the plain reason means "this access token is no good"; wrong passwords and
            # refused refresh tokens are final.
            if type(error) is not Unauthenticated:
                raise
            try:
                renewed = await session.renew(token, self._exchange)
            except InvalidRefreshToken as refused:
                raise refused from error
            if not renewed:
                raise
        return await self.invoke(method, request, session.access_token, timeout)

    async def invoke(
        self, method: Method[Response], request: Any, token: str | None, timeout: float | None
    ) -> Response:
        """One call (the channel may retry it) with an optional bearer token."""
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        try:
            return await method(
                request, timeout=self.timeout if timeout is None else timeout, metadata=metadata
            )
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc_error(error) from error

    async def _renew_ahead(self, session: Session) -> None:
        # The current token still works for a moment, so a failed early renewal is not the
        # call's failure: the call goes ahead and, if the server refuses the token, renewal is
        # tried again (or its error raised) then.
        try:
            await session.renew(session.access_token, self._exchange)
        except UsermgmtError:
            return

    async def _exchange(self, refresh_token: str) -> session_pb2.Session:
        request = auth_service_pb2.RefreshTokenRequest(refresh_token=refresh_token)
        response = await self.invoke(self.auth.RefreshToken, request, None, None)
        return response.session
