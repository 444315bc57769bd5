"""usermgmt.v1.UserService: thin translation between requests and the user manager."""

from __future__ import annotations

import grpc

from usermgmt.v1 import user_service_pb2, user_service_pb2_grpc
from usermgmt_server.api.convert import patch_from_proto, update_paths, user_to_proto
from usermgmt_server.api.principal import current_principal
from usermgmt_server.domain.manager import Registration, UserManager


class UserServicer(user_service_pb2_grpc.UserServiceServicer):
    """Serves account RPCs; authorization and error mapping happen in the interceptor."""

    def __init__(self, manager: UserManager) -> None:
        self._manager = manager

    async def Register(
        self, request: user_service_pb2.RegisterRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.RegisterResponse:
        user = await self._manager.register(
            Registration(
                username=request.username,
                email=request.email,
                password=request.password,
                display_name=request.display_name,
                request_id=request.request_id,
            )
        )
        return user_service_pb2.RegisterResponse(user=user_to_proto(user))

    async def GetUser(
        self, request: user_service_pb2.GetUserRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.GetUserResponse:
        user = await self._manager.get_user(current_principal(), request.user_id)
        return user_service_pb2.GetUserResponse(user=user_to_proto(user))

    async def UpdateUser(
        self, request: user_service_pb2.UpdateUserRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.UpdateUserResponse:
        user = await self._manager.update_user(
            current_principal(),
            request.user.user_id,
            etag=request.user.etag,
            paths=update_paths(request),
            patch=patch_from_proto(request.user),
        )
        return user_service_pb2.UpdateUserResponse(user=user_to_proto(user))

    async def DeleteUser(
        self, request: user_service_pb2.DeleteUserRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.DeleteUserResponse:
        await self._manager.delete_user(current_principal(), request.user_id, etag=request.etag)
        return user_service_pb2.DeleteUserResponse()

    async def ListUsers(
        self, request: user_service_pb2.ListUsersRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.ListUsersResponse:
        listed = await self._manager.list_users(
            current_principal(),
            filter_text=request.filter,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return user_service_pb2.ListUsersResponse(
            users=[user_to_proto(user) for user in listed.users],
            next_page_token=listed.next_page_token,
        )
