"""usermgmt.v1.AuthService: sign-in, sessions and the public key set."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from usermgmt.v1 import auth_service_pb2, auth_service_pb2_grpc
from usermgmt_server.api.convert import TOKEN_TYPE, jwks_to_proto, session_to_proto, user_to_proto
from usermgmt_server.api.principal import current_principal
from usermgmt_server.domain.lookup import load_visible
from usermgmt_server.domain.ports import UserRepository
from usermgmt_server.domain.sessions import SessionService
from usermgmt_server.domain.sign_in import SignIn


class AuthServicer(auth_service_pb2_grpc.AuthServiceServicer):
    """Serves sign-in and session RPCs."""

    def __init__(
        self,
        *,
        sign_in: SignIn,
        sessions: SessionService,
        users: UserRepository,
        jwks: Callable[[], dict[str, list[dict[str, str]]]],
    ) -> None:
        self._sign_in = sign_in
        self._sessions = sessions
        self._users = users
        self._jwks = jwks

    async def Authenticate(
        self, request: auth_service_pb2.AuthenticateRequest, context: grpc.aio.ServicerContext
    ) -> auth_service_pb2.AuthenticateResponse:
        result = await self._sign_in.authenticate(request.login, request.password)
        session = session_to_proto(result.session)
        return auth_service_pb2.AuthenticateResponse(
            access_token=session.access_token,
            token_type=TOKEN_TYPE,
            expires_in=session.expires_in,
            user=user_to_proto(result.user),
            session=session,
        )

    async def RefreshToken(
        self, request: auth_service_pb2.RefreshTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_service_pb2.RefreshTokenResponse:
        session = await self._sessions.refresh(request.refresh_token)
        return auth_service_pb2.RefreshTokenResponse(session=session_to_proto(session))

    async def Logout(
        self, request: auth_service_pb2.LogoutRequest, context: grpc.aio.ServicerContext
    ) -> auth_service_pb2.LogoutResponse:
        await self._sessions.logout(request.refresh_token)
        return auth_service_pb2.LogoutResponse()

    async def GetJwks(
        self, request: auth_service_pb2.GetJwksRequest, context: grpc.aio.ServicerContext
    ) -> auth_service_pb2.GetJwksResponse:
        return jwks_to_proto(self._jwks())

    async def RevokeSessions(
        self, request: auth_service_pb2.RevokeSessionsRequest, context: grpc.aio.ServicerContext
    ) -> auth_service_pb2.RevokeSessionsResponse:
        user = await load_visible(self._users, current_principal(), request.user_id)
        await self._sessions.revoke_all(user)
        return auth_service_pb2.RevokeSessionsResponse()
