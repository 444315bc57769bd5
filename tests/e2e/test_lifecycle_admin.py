"""Administrative controls: disabling and enabling accounts, setting a password with a forced
change, who may call them, and signing a user out everywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import field_mask_pb2

from tests.e2e.harness import (
    PASSWORD,
    Api,
    RunningServer,
    authenticate,
    bearer,
    expect_error,
    expect_rpc_error,
    get_me,
    refresh,
    running_server,
    violation_reasons,
)
from usermgmt.v1 import auth_service_pb2, session_pb2, user_pb2, user_service_pb2
from usermgmt_server.adapters.security.system import ManualClock

TEMPORARY_PASSWORD = "temporary pass phrase from the admin"
CHOSEN_PASSWORD = "my own pass phrase again"


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


async def signed_in(api: Api) -> tuple[user_pb2.User, session_pb2.Session]:
    user = (await api.register()).user
    return user, (await authenticate(api, user.username)).session


async def assert_session_ended(api: Api, session: session_pb2.Session) -> None:
    error = await expect_error(get_me(api, session.access_token))
    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    error = await expect_error(refresh(api, session.refresh_token))
    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")


def rename(display_name: str) -> user_service_pb2.UpdateUserRequest:
    return user_service_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id="me", display_name=display_name),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
    )


# -- disabling and enabling ----------------------------------------------------------------


async def test_disable_and_enable_an_account(api: Api, clock: ManualClock) -> None:
    user, session = await signed_in(api)
    clock.advance(seconds=1)
    admin = await api.admin_token()
    disabled = await api.users.DisableUser(
        user_service_pb2.DisableUserRequest(user_id=user.user_id), metadata=bearer(admin)
    )
    assert disabled.user.user_id == user.user_id
    assert disabled.user.state == user_pb2.USER_STATE_DISABLED
    refused = await expect_error(authenticate(api, user.username))
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    await assert_session_ended(api, session)

    enabled = await api.users.EnableUser(
        user_service_pb2.EnableUserRequest(user_id=user.user_id), metadata=bearer(admin)
    )
    assert enabled.user.state == user_pb2.USER_STATE_ACTIVE
    fresh = await authenticate(api, user.username)
    assert (await get_me(api, fresh.access_token)).user.state == user_pb2.USER_STATE_ACTIVE
    await assert_session_ended(api, session)  # enabling does not revive revoked sessions


# -- SetPassword and the forced change -----------------------------------------------------


async def test_set_password_with_a_required_change(api: Api, clock: ManualClock) -> None:
    user, earlier = await signed_in(api)
    clock.advance(seconds=1)
    admin = await api.admin_token()
    response = await api.users.SetPassword(
        user_service_pb2.SetPasswordRequest(
            user_id=user.user_id, password=TEMPORARY_PASSWORD, change_required=True
        ),
        metadata=bearer(admin),
    )
    assert response.user.user_id == user.user_id
    assert response.user.password_change_required
    await assert_session_ended(api, earlier)
    old = await expect_error(authenticate(api, user.username, PASSWORD))
    assert old.reason == "INVALID_CREDENTIALS"

    signed = await authenticate(api, user.username, TEMPORARY_PASSWORD)
    assert signed.user.password_change_required
    token = signed.access_token
    blocked = await expect_error(api.users.UpdateUser(rename("Blocked"), metadata=bearer(token)))
    assert (blocked.code, blocked.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PASSWORD_CHANGE_REQUIRED",
    )
    me = (await get_me(api, token)).user
    assert me.password_change_required and me.display_name != "Blocked"

    changed = await api.users.ChangePassword(
        user_service_pb2.ChangePasswordRequest(
            current_password=TEMPORARY_PASSWORD, new_password=CHOSEN_PASSWORD
        ),
        metadata=bearer(token),
    )
    new_token = changed.session.access_token
    assert not (await get_me(api, new_token)).user.password_change_required
    renamed = await api.users.UpdateUser(rename("Free Again"), metadata=bearer(new_token))
    assert renamed.user.display_name == "Free Again"
    assert not renamed.user.password_change_required
    await authenticate(api, user.username, CHOSEN_PASSWORD)


async def test_set_password_applies_the_policy(api: Api, admin_token: str) -> None:
    user = (await api.register()).user
    error = await expect_rpc_error(
        api.users.SetPassword(
            user_service_pb2.SetPasswordRequest(user_id=user.user_id, password="too short"),
            metadata=bearer(admin_token),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation_reasons(error) == {("password", "PASSWORD_TOO_SHORT")}
    await authenticate(api, user.username, PASSWORD)


# -- who may call the administrative RPCs --------------------------------------------------


def _admin_calls(api: Api, target: str) -> dict[str, object]:
    return {
        "DisableUser": lambda md: api.users.DisableUser(
            user_service_pb2.DisableUserRequest(user_id=target), metadata=md
        ),
        "EnableUser": lambda md: api.users.EnableUser(
            user_service_pb2.EnableUserRequest(user_id=target), metadata=md
        ),
        "UnlockUser": lambda md: api.users.UnlockUser(
            user_service_pb2.UnlockUserRequest(user_id=target), metadata=md
        ),
        "SetPassword": lambda md: api.users.SetPassword(
            user_service_pb2.SetPasswordRequest(
                user_id=target, password=TEMPORARY_PASSWORD, change_required=True
            ),
            metadata=md,
        ),
    }


@pytest.mark.parametrize("rpc", ["DisableUser", "EnableUser", "UnlockUser", "SetPassword"])
async def test_administrative_rpcs_refuse_other_callers(api: Api, rpc: str) -> None:
    caller, session = await signed_in(api)
    victim = (await api.register()).user
    for target in (victim.user_id, caller.user_id):
        call = _admin_calls(api, target)[rpc]
        denied = await expect_error(call(bearer(session.access_token)))  # type: ignore[operator]
        assert (denied.code, denied.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "PERMISSION_DENIED",
        )
        anonymous = await expect_error(call(()))  # type: ignore[operator]
        assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED
    for account in (victim, caller):
        signed = await authenticate(api, account.username, PASSWORD)
        assert signed.user.state == user_pb2.USER_STATE_ACTIVE
        assert not signed.user.password_change_required


# -- signing out everywhere ----------------------------------------------------------------


async def test_revoke_sessions_of_oneself(api: Api, clock: ManualClock) -> None:
    user, first = await signed_in(api)
    second = (await authenticate(api, user.username)).session
    _, bystander = await signed_in(api)
    clock.advance(seconds=1)
    response = await api.auth.RevokeSessions(
        auth_service_pb2.RevokeSessionsRequest(user_id="me"), metadata=bearer(first.access_token)
    )
    assert response == auth_service_pb2.RevokeSessionsResponse()
    await assert_session_ended(api, first)
    await assert_session_ended(api, second)
    await get_me(api, bystander.access_token)
    await refresh(api, bystander.refresh_token)
    fresh = await authenticate(api, user.username)
    assert (await get_me(api, fresh.access_token)).user.user_id == user.user_id
    await refresh(api, fresh.session.refresh_token)


async def test_an_administrator_revokes_the_sessions_of_a_user(
    api: Api, clock: ManualClock
) -> None:
    user, session = await signed_in(api)
    _, other_session = await signed_in(api)
    denied = await expect_error(
        api.auth.RevokeSessions(
            auth_service_pb2.RevokeSessionsRequest(user_id=user.user_id),
            metadata=bearer(other_session.access_token),
        )
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    clock.advance(seconds=1)
    admin = await api.admin_token()
    await api.auth.RevokeSessions(
        auth_service_pb2.RevokeSessionsRequest(user_id=user.user_id), metadata=bearer(admin)
    )
    await assert_session_ended(api, session)
    await get_me(api, other_session.access_token)
    await get_me(api, admin)
    await authenticate(api, user.username)
