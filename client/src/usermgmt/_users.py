"""UserService: accounts, e-mail verification, passwords and administration."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from usermgmt._fieldmask import update_request_from_user, update_user_request
from usermgmt._pager import UserPager
from usermgmt._transport import Transport
from usermgmt.v1 import user_pb2
from usermgmt.v1 import user_service_pb2 as pb

#: The most rows one ImportUsers call takes (the server refuses more).
MAX_IMPORT_ROWS = 1_000


class UsersClient:
    """The UserService calls, returning ``usermgmt.v1`` messages (``User``).

    ``user_id`` arguments take an account id or ``"me"`` (the signed-in caller). Every method
    takes ``timeout`` (seconds) to override the client's default deadline and raises a
    ``UsermgmtError`` subclass on failure.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._stub = transport.users

    async def register(
        self,
        username: str,
        email: str,
        password: str,
        *,
        display_name: str = "",
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> user_pb2.User:
        """Create an account (public).

        A ``request_id`` is generated when not given, so the channel's retries of this call
        can never create the account twice or fail with USERNAME_TAKEN on a replay.
        """
        request = pb.RegisterRequest(
            username=username,
            email=email,
            password=password,
            display_name=display_name,
            request_id=request_id or str(uuid.uuid4()),
        )
        response = await self._transport.call(
            self._stub.Register, request, authenticated=False, timeout=timeout
        )
        return response.user

    async def get(self, user_id: str = "me", *, timeout: float | None = None) -> user_pb2.User:
        """Read one account (the caller's own, or any for administrators)."""
        request = pb.GetUserRequest(user_id=user_id)
        response = await self._transport.call(self._stub.GetUser, request, timeout=timeout)
        return response.user

    async def update(
        self,
        user_id: str = "me",
        *,
        etag: str = "",
        timeout: float | None = None,
        **fields: Any,
    ) -> user_pb2.User:
        """Change exactly the given fields; the update mask is built from their names.

        ``client.users.update("me", display_name="Alice A.", phone_number="")`` changes the
        display name and clears the phone number. With ``etag`` (from a ``User`` read before),
        the change is refused with ``EtagMismatch`` if the account changed since. Field names
        UpdateUser cannot change raise ``UnknownField`` before any call.
        """
        request = update_user_request(user_id, etag=etag, **fields)
        return await self._update(request, timeout)

    async def update_from(
        self,
        user: user_pb2.User,
        paths: Iterable[str] | None = None,
        *,
        timeout: float | None = None,
    ) -> user_pb2.User:
        """Apply a partial ``User``: the fields set in it (or ``paths``), guarded by its etag."""
        return await self._update(update_request_from_user(user, paths), timeout)

    async def _update(self, request: pb.UpdateUserRequest, timeout: float | None) -> user_pb2.User:
        response = await self._transport.call(self._stub.UpdateUser, request, timeout=timeout)
        return response.user

    async def delete(
        self, user_id: str = "me", *, etag: str = "", timeout: float | None = None
    ) -> None:
        """Delete an account; with ``etag``, only if it has not changed since it was read."""
        request = pb.DeleteUserRequest(user_id=user_id, etag=etag)
        await self._transport.call(self._stub.DeleteUser, request, timeout=timeout)

    def list(
        self,
        *,
        filter: str = "",
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> UserPager:
        """Every account matching ``filter`` (administrators), fetched page by page.

        ``async for user in client.users.list(filter='state = USER_STATE_ACTIVE')`` follows
        the pages; ``.pages()`` yields the pages themselves. ``page_size`` 0 lets the server
        choose (50); ``timeout`` applies to each page.
        """

        async def fetch(token: str) -> pb.ListUsersResponse:
            request = pb.ListUsersRequest(page_size=page_size, page_token=token, filter=filter)
            return await self._transport.call(self._stub.ListUsers, request, timeout=timeout)

        return UserPager(fetch, page_token)

    async def verify_email(
        self,
        code: str,
        *,
        login: str = "",
        user_id: str = "",
        timeout: float | None = None,
    ) -> user_pb2.User:
        """Confirm an e-mail address with the code sent to it (public): give ``login``
        (username or e-mail) or ``user_id``."""
        request = pb.VerifyEmailRequest(code=code, **_subject(login, user_id))
        response = await self._transport.call(
            self._stub.VerifyEmail, request, authenticated=False, timeout=timeout
        )
        return response.user

    async def resend_verification_code(
        self,
        *,
        login: str = "",
        user_id: str = "",
        return_code: bool = False,
        timeout: float | None = None,
    ) -> str:
        """Send a new verification code (public); administrators may ask for it to be returned
        instead (``return_code``), otherwise the result is ``""``."""
        request = pb.ResendVerificationCodeRequest(
            return_code=return_code, **_subject(login, user_id)
        )
        response = await self._transport.call(
            self._stub.ResendVerificationCode,
            request,
            authenticated=return_code,
            timeout=timeout,
        )
        return response.verification_code

    async def change_password(
        self, current_password: str, new_password: str, *, timeout: float | None = None
    ) -> None:
        """Change the caller's password. The server ends every other session and returns a
        fresh one, which replaces the client's session (``on_tokens`` is told)."""
        request = pb.ChangePasswordRequest(
            current_password=current_password, new_password=new_password
        )
        response = await self._transport.call(self._stub.ChangePassword, request, timeout=timeout)
        session = self._transport.session
        if session is not None and response.HasField("session"):
            await session.replace(response.session)

    async def request_password_reset(
        self, login: str, *, return_code: bool = False, timeout: float | None = None
    ) -> str:
        """Send a password-reset code (public); administrators may have it returned."""
        request = pb.RequestPasswordResetRequest(login=login, return_code=return_code)
        response = await self._transport.call(
            self._stub.RequestPasswordReset,
            request,
            authenticated=return_code,
            timeout=timeout,
        )
        return response.reset_code

    async def reset_password(
        self, login: str, code: str, new_password: str, *, timeout: float | None = None
    ) -> None:
        """Set a new password with a reset code (public); every session of the account ends."""
        request = pb.ResetPasswordRequest(login=login, code=code, new_password=new_password)
        await self._transport.call(
            self._stub.ResetPassword, request, authenticated=False, timeout=timeout
        )

    async def disable(self, user_id: str, *, timeout: float | None = None) -> user_pb2.User:
        """Disable an account and end its sessions (administrators)."""
        request = pb.DisableUserRequest(user_id=user_id)
        response = await self._transport.call(self._stub.DisableUser, request, timeout=timeout)
        return response.user

    async def enable(self, user_id: str, *, timeout: float | None = None) -> user_pb2.User:
        """Re-enable a disabled account (administrators)."""
        request = pb.EnableUserRequest(user_id=user_id)
        response = await self._transport.call(self._stub.EnableUser, request, timeout=timeout)
        return response.user

    async def unlock(self, user_id: str, *, timeout: float | None = None) -> None:
        """Clear an account's failed sign-ins and lock (administrators)."""
        request = pb.UnlockUserRequest(user_id=user_id)
        await self._transport.call(self._stub.UnlockUser, request, timeout=timeout)

    async def set_password(
        self,
        user_id: str,
        password: str,
        *,
        change_required: bool = False,
        timeout: float | None = None,
    ) -> user_pb2.User:
        """Set an account's password, optionally forcing a change at next sign-in
        (administrators); the account's sessions end."""
        request = pb.SetPasswordRequest(
            user_id=user_id, password=password, change_required=change_required
        )
        response = await self._transport.call(self._stub.SetPassword, request, timeout=timeout)
        return response.user

    async def import_users(
        self, users: Iterable[pb.ImportedUser], *, timeout: float | None = None
    ) -> pb.ImportUsersResponse:
        """Create accounts from rows (administrators) in one ImportUsers call.

        The response has one ``ImportUserResult`` per row, in order (``index`` counts from 0),
        and the counts. Rows whose account exists come back EXISTS, so sending rows again is
        safe. The rows are held in memory, so that the call can be repeated after a renewal of
        the access token; send at most ``MAX_IMPORT_ROWS`` per call (``ValueError`` otherwise).
        """
        requests = [pb.ImportUsersRequest(user=user) for user in users]
        if len(requests) > MAX_IMPORT_ROWS:
            raise ValueError(f"at most {MAX_IMPORT_ROWS} rows per ImportUsers call")
        return await self._transport.call(self._stub.ImportUsers, requests, timeout=timeout)


def _subject(login: str, user_id: str) -> dict[str, str]:
    if bool(login) == bool(user_id):
        raise ValueError("give exactly one of login or user_id")
    return {"login": login} if login else {"user_id": user_id}
