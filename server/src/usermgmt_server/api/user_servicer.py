"""usermgmt.v1.UserService: thin translation between requests and the user manager."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from usermgmt.v1 import user_service_pb2, user_service_pb2_grpc
from usermgmt_server.api.convert import (
    import_response,
    import_row_from_proto,
    patch_from_proto,
    session_to_proto,
    update_paths,
    user_to_proto,
)
from usermgmt_server.api.principal import current_principal, optional_principal
from usermgmt_server.domain.bulk_import import UserImporter
from usermgmt_server.domain.credentials import Credentials
from usermgmt_server.domain.manager import Registration, UserManager
from usermgmt_server.domain.sign_in import SignIn
from usermgmt_server.domain.verification import CodeService


class UserServicer(user_service_pb2_grpc.UserServiceServicer):
    """Serves account RPCs; authorization and error mapping happen in the interceptor."""

    def __init__(
        self,
        *,
        manager: UserManager,
        codes: CodeService,
        credentials: Credentials,
        sign_in: SignIn,
        importer: UserImporter,
    ) -> None:
        self._manager = manager
        self._codes = codes
        self._credentials = credentials
        self._sign_in = sign_in
        self._importer = importer

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

    async def VerifyEmail(
        self, request: user_service_pb2.VerifyEmailRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.VerifyEmailResponse:
        user = await self._codes.verify_email(
            user_id=request.user_id, login=request.login, code=request.code
        )
        return user_service_pb2.VerifyEmailResponse(user=user_to_proto(user))

    async def ResendVerificationCode(
        self,
        request: user_service_pb2.ResendVerificationCodeRequest,
        context: grpc.aio.ServicerContext,
    ) -> user_service_pb2.ResendVerificationCodeResponse:
        code = await self._codes.resend_verification(
            optional_principal(),
            user_id=request.user_id,
            login=request.login,
            return_code=request.return_code,
        )
        return user_service_pb2.ResendVerificationCodeResponse(verification_code=code)

    async def ChangePassword(
        self, request: user_service_pb2.ChangePasswordRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.ChangePasswordResponse:
        session = await self._credentials.change_password(
            current_principal(), request.current_password, request.new_password
        )
        return user_service_pb2.ChangePasswordResponse(session=session_to_proto(session))

    async def RequestPasswordReset(
        self,
        request: user_service_pb2.RequestPasswordResetRequest,
        context: grpc.aio.ServicerContext,
    ) -> user_service_pb2.RequestPasswordResetResponse:
        code = await self._credentials.request_reset(
            optional_principal(), request.login, request.return_code
        )
        return user_service_pb2.RequestPasswordResetResponse(reset_code=code)

    async def ResetPassword(
        self, request: user_service_pb2.ResetPasswordRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.ResetPasswordResponse:
        await self._credentials.reset_password(request.login, request.code, request.new_password)
        return user_service_pb2.ResetPasswordResponse()

    async def DisableUser(
        self, request: user_service_pb2.DisableUserRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.DisableUserResponse:
        user = await self._credentials.disable(current_principal(), request.user_id)
        return user_service_pb2.DisableUserResponse(user=user_to_proto(user))

    async def EnableUser(
        self, request: user_service_pb2.EnableUserRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.EnableUserResponse:
        user = await self._credentials.enable(current_principal(), request.user_id)
        return user_service_pb2.EnableUserResponse(user=user_to_proto(user))

    async def UnlockUser(
        self, request: user_service_pb2.UnlockUserRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.UnlockUserResponse:
        await self._sign_in.unlock(current_principal(), request.user_id)
        return user_service_pb2.UnlockUserResponse()

    async def SetPassword(
        self, request: user_service_pb2.SetPasswordRequest, context: grpc.aio.ServicerContext
    ) -> user_service_pb2.SetPasswordResponse:
        user = await self._credentials.set_password(
            current_principal(), request.user_id, request.password, request.change_required
        )
        return user_service_pb2.SetPasswordResponse(user=user_to_proto(user))

    async def ImportUsers(
        self,
        request_iterator: AsyncIterator[user_service_pb2.ImportUsersRequest],
        context: grpc.aio.ServicerContext,
    ) -> user_service_pb2.ImportUsersResponse:
        rows = (import_row_from_proto(request.user) async for request in request_iterator)
        report = await self._importer.import_users(current_principal(), rows)
        return import_response(report)
