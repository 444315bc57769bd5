"""usermgmt.v1.AuthService: sign-in."""

from __future__ import annotations

import grpc

from usermgmt.v1 import auth_service_pb2, auth_service_pb2_grpc
from usermgmt_server.api.convert import user_to_proto
from usermgmt_server.domain.manager import UserManager

TOKEN_TYPE = "Bearer"


class AuthServicer(auth_service_pb2_grpc.AuthServiceServicer):
    """Serves sign-in RPCs."""

    def __init__(self, manager: UserManager) -> None:
        self._manager = manager

    async def Authenticate(
        self, request: auth_service_pb2.AuthenticateRequest, context: grpc.aio.ServicerContext
    ) -> auth_service_pb2.AuthenticateResponse:
        result = await self._manager.authenticate(request.login, request.password)
        return auth_service_pb2.AuthenticateResponse(
            access_token=result.access_token.token,
            token_type=TOKEN_TYPE,
            expires_in=result.access_token.expires_in,
            user=user_to_proto(result.user),
        )
