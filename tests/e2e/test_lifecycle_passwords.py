"""Password changes and resets: the current password, the policy on the new one, revocation of
earlier sessions, reset codes that work once, and answers that do not reveal accounts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import grpc
import pytest

from tests.e2e.harness import (
    PASSWORD,
    Api,
    RunningServer,
    authenticate,
    bearer,
    codes_sent,
    expect_error,
    expect_rpc_error,
    get_me,
    other_code,
    refresh,
    running_server,
    unique,
    violation_reasons,
)
from usermgmt.v1 import user_pb2, user_service_pb2
from usermgmt_server.adapters.security.system import ManualClock

NEW_PASSWORD = "a brand new pass phrase"
THIRD_PASSWORD = "yet another pass phrase"
WEAK_PASSWORD = "too short"


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
async def server(moto_endpoint: str, clock: ManualClock) -> AsyncIterator[RunningServer]:
    """A server on a clock the tests move, checking revocation on every call."""
    async with running_server(
        moto_endpoint, clock=clock, USERMGMT_SESSION_CACHE_SECONDS="0"
    ) as started:
        yield started


async def new_account(api: Api) -> user_pb2.User:
    return (await api.register()).user


def change(current: str, new: str) -> user_service_pb2.ChangePasswordRequest:
    return user_service_pb2.ChangePasswordRequest(current_password=current, new_password=new)


def reset(login: str, code: str, new: str) -> user_service_pb2.ResetPasswordRequest:
    return user_service_pb2.ResetPasswordRequest(login=login, code=code, new_password=new)


async def assert_credentials_refused(api: Api, login: str, password: str) -> None:
    error = await expect_error(authenticate(api, login, password))
    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")


async def assert_invalid_code(call: object) -> None:
    error = await expect_error(call)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CODE")
    assert "code" in error.violations


async def request_reset_code(api: Api, server: RunningServer, user: user_pb2.User) -> str:
    await api.users.RequestPasswordReset(
        user_service_pb2.RequestPasswordResetRequest(login=user.username)
    )
    return server.notifier.last_code(user.user_id, "RESET_PASSWORD")


# -- ChangePassword ------------------------------------------------------------------------


async def test_change_password_needs_the_current_password(api: Api) -> None:
    user = await new_account(api)
    token = (await authenticate(api, user.username)).access_token
    error = await expect_error(
        api.users.ChangePassword(change("not the password", NEW_PASSWORD), metadata=bearer(token))
    )
    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
    await authenticate(api, user.username, PASSWORD)
    await assert_credentials_refused(api, user.username, NEW_PASSWORD)


async def test_change_password_applies_the_policy_to_the_new_password(api: Api) -> None:
    user = await new_account(api)
    token = (await authenticate(api, user.username)).access_token
    error = await expect_rpc_error(
        api.users.ChangePassword(change(PASSWORD, WEAK_PASSWORD), metadata=bearer(token))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation_reasons(error) == {("new_password", "PASSWORD_TOO_SHORT")}
    await authenticate(api, user.username, PASSWORD)


async def test_change_password_returns_a_working_session(api: Api) -> None:
    user = await new_account(api)
    token = (await authenticate(api, user.username)).access_token
    response = await api.users.ChangePassword(
        change(PASSWORD, NEW_PASSWORD), metadata=bearer(token)
    )
    session = response.session
    assert session.token_type == "Bearer" and session.expires_in == 900
    assert (await get_me(api, session.access_token)).user.user_id == user.user_id
    renewed = (await refresh(api, session.refresh_token)).session
    assert (await get_me(api, renewed.access_token)).user.user_id == user.user_id
    await assert_credentials_refused(api, user.username, PASSWORD)
    await authenticate(api, user.username, NEW_PASSWORD)


async def test_change_password_ends_every_earlier_session(api: Api, clock: ManualClock) -> None:
    user = await new_account(api)
    old = (await authenticate(api, user.username)).session
    other_device = (await authenticate(api, user.username)).session
    clock.advance(seconds=1)
    response = await api.users.ChangePassword(
        change(PASSWORD, NEW_PASSWORD), metadata=bearer(old.access_token)
    )
    for earlier in (old, other_device):
        error = await expect_error(get_me(api, earlier.access_token))
        assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
        error = await expect_error(refresh(api, earlier.refresh_token))
        assert (error.code, error.reason) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_REFRESH_TOKEN",
        )
    assert (await get_me(api, response.session.access_token)).user.user_id == user.user_id
    await refresh(api, response.session.refresh_token)


# -- RequestPasswordReset and ResetPassword ------------------------------------------------


async def test_reset_requests_answer_the_same_for_unknown_logins(
    api: Api, server: RunningServer
) -> None:
    user = await new_account(api)
    sent_before = len(server.notifier.sent)
    observed = []
    for login in (user.username, unique("ghost"), f"{unique('ghost')}@example.com"):
        call = api.users.RequestPasswordReset(
            user_service_pb2.RequestPasswordResetRequest(login=login)
        )
        response = await call
        observed.append(
            (
                response.SerializeToString(),
                await call.code(),
                await call.details(),
                tuple(await call.initial_metadata() or ()),
                tuple(await call.trailing_metadata() or ()),
            )
        )
    assert observed[0] == observed[1] == observed[2]
    assert observed[0][0] == b""
    assert len(server.notifier.sent) == sent_before + 1
    target, code = codes_sent(server.notifier, user.user_id, "RESET_PASSWORD")[-1]
    assert target == user.email
    assert re.fullmatch(r"[0-9]{6}", code)


async def test_reset_password_sets_the_new_password_and_ends_sessions(
    api: Api, server: RunningServer, clock: ManualClock
) -> None:
    user = await new_account(api)
    earlier = (await authenticate(api, user.username)).session
    code = await request_reset_code(api, server, user)
    clock.advance(seconds=1)
    response = await api.users.ResetPassword(reset(user.username, code, NEW_PASSWORD))
    assert response == user_service_pb2.ResetPasswordResponse()
    await authenticate(api, user.username, NEW_PASSWORD)
    await assert_credentials_refused(api, user.username, PASSWORD)
    error = await expect_error(refresh(api, earlier.refresh_token))
    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")
    error = await expect_error(get_me(api, earlier.access_token))
    assert error.code == grpc.StatusCode.UNAUTHENTICATED


async def test_reset_by_email_address(api: Api, server: RunningServer) -> None:
    user = await new_account(api)
    await api.users.RequestPasswordReset(
        user_service_pb2.RequestPasswordResetRequest(login=user.email.upper())
    )
    code = server.notifier.last_code(user.user_id, "RESET_PASSWORD")
    await api.users.ResetPassword(reset(user.email, code, NEW_PASSWORD))
    await authenticate(api, user.email, NEW_PASSWORD)


async def test_a_wrong_reset_code_is_refused(api: Api, server: RunningServer) -> None:
    user = await new_account(api)
    code = await request_reset_code(api, server, user)
    await assert_invalid_code(
        api.users.ResetPassword(reset(user.username, other_code(code), NEW_PASSWORD))
    )
    await authenticate(api, user.username, PASSWORD)
    await assert_credentials_refused(api, user.username, NEW_PASSWORD)


async def test_a_reset_code_works_once(api: Api, server: RunningServer) -> None:
    user = await new_account(api)
    code = await request_reset_code(api, server, user)
    await api.users.ResetPassword(reset(user.username, code, NEW_PASSWORD))
    await assert_invalid_code(api.users.ResetPassword(reset(user.username, code, THIRD_PASSWORD)))
    await authenticate(api, user.username, NEW_PASSWORD)
    await assert_credentials_refused(api, user.username, THIRD_PASSWORD)


async def test_reset_applies_the_policy_without_spending_the_code(
    api: Api, server: RunningServer
) -> None:
    user = await new_account(api)
    code = await request_reset_code(api, server, user)
    error = await expect_rpc_error(
        api.users.ResetPassword(reset(user.username, code, WEAK_PASSWORD))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation_reasons(error) == {("new_password", "PASSWORD_TOO_SHORT")}
    await authenticate(api, user.username, PASSWORD)
    await api.users.ResetPassword(reset(user.username, code, NEW_PASSWORD))
    await authenticate(api, user.username, NEW_PASSWORD)


async def test_an_administrator_can_have_the_reset_code_returned(
    api: Api, server: RunningServer, admin_token: str
) -> None:
    user = await new_account(api)
    sent_before = len(server.notifier.sent)
    response = await api.users.RequestPasswordReset(
        user_service_pb2.RequestPasswordResetRequest(login=user.username, return_code=True),
        metadata=bearer(admin_token),
    )
    assert re.fullmatch(r"[0-9]{6}", response.reset_code)
    assert len(server.notifier.sent) == sent_before
    await api.users.ResetPassword(reset(user.username, response.reset_code, NEW_PASSWORD))
    await authenticate(api, user.username, NEW_PASSWORD)
    unknown = await api.users.RequestPasswordReset(
        user_service_pb2.RequestPasswordResetRequest(login=unique("ghost"), return_code=True),
        metadata=bearer(admin_token),
    )
    assert unknown.reset_code == ""


async def test_return_code_for_resets_is_for_administrators_only(
    api: Api, server: RunningServer
) -> None:
    user = await new_account(api)
    token = (await authenticate(api, user.username)).access_token
    sent_before = len(server.notifier.sent)
    for metadata in (bearer(token), ()):
        error = await expect_error(
            api.users.RequestPasswordReset(
                user_service_pb2.RequestPasswordResetRequest(login=user.username, return_code=True),
                metadata=metadata,
            )
        )
        assert (error.code, error.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "PERMISSION_DENIED",
        )
    assert len(server.notifier.sent) == sent_before
