"""E-mail verification: pending accounts, 6-digit codes (attempts, expiry, single use, never
stored in plain), resending with a cooldown, the administrators' return_code, and e-mail
changes that wait for the new address to be confirmed."""

from __future__ import annotations

import re
import uuid
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
    codes_sent,
    error_details,
    expect_error,
    expect_rpc_error,
    get_me,
    other_code,
    retry_delay,
    running_server,
    scan_table,
    unique,
)
from usermgmt.v1 import user_pb2, user_service_pb2
from usermgmt_server.adapters.security.system import ManualClock

CODE_TTL = 900
COOLDOWN = 60


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
async def server(moto_endpoint: str, clock: ManualClock) -> AsyncIterator[RunningServer]:
    """A server that requires e-mail verification, on a clock the tests move."""
    async with running_server(
        moto_endpoint, clock=clock, USERMGMT_REQUIRE_EMAIL_VERIFICATION="true"
    ) as started:
        yield started


async def register_pending(api: Api, server: RunningServer) -> tuple[user_pb2.User, str]:
    """A new pending account and the verification code it was sent."""
    user = (await api.register()).user
    return user, server.notifier.last_code(user.user_id)


async def register_verified(api: Api, server: RunningServer) -> user_pb2.User:
    """A new account whose e-mail address is verified."""
    user, code = await register_pending(api, server)
    verified = await api.users.VerifyEmail(
        user_service_pb2.VerifyEmailRequest(user_id=user.user_id, code=code)
    )
    assert verified.user.state == user_pb2.USER_STATE_ACTIVE
    return verified.user


def verify_by_id(user_id: str, code: str) -> user_service_pb2.VerifyEmailRequest:
    return user_service_pb2.VerifyEmailRequest(user_id=user_id, code=code)


def resend(
    login: str, *, return_code: bool = False
) -> user_service_pb2.ResendVerificationCodeRequest:
    return user_service_pb2.ResendVerificationCodeRequest(login=login, return_code=return_code)


async def assert_invalid_code(call: object) -> None:
    error = await expect_error(call)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CODE")
    assert error.domain == "usermgmt"
    assert "code" in error.violations


async def admin_get(api: Api, user_id: str) -> user_pb2.User:
    token = await api.admin_token()
    response = await api.users.GetUser(
        user_service_pb2.GetUserRequest(user_id=user_id), metadata=bearer(token)
    )
    return response.user


# -- registration and verification ---------------------------------------------------------


async def test_register_leaves_the_account_pending_and_sends_a_code(
    api: Api, server: RunningServer
) -> None:
    username = unique()
    email = f"{username}@Example.com"
    user = (await api.register(username, email=email)).user
    assert user.state == user_pb2.USER_STATE_PENDING_VERIFICATION
    assert not user.email_verified
    assert user.email == email and user.pending_email == ""
    sent = codes_sent(server.notifier, user.user_id, "VERIFY_EMAIL")
    assert len(sent) == 1
    target, code = sent[0]
    assert target == email
    assert re.fullmatch(r"[0-9]{6}", code)


async def test_verify_email_by_user_id_activates_the_account(
    api: Api, server: RunningServer
) -> None:
    user, code = await register_pending(api, server)
    response = await api.users.VerifyEmail(verify_by_id(user.user_id, code))
    assert response.user.user_id == user.user_id
    assert response.user.state == user_pb2.USER_STATE_ACTIVE
    assert response.user.email_verified
    assert response.user.email == user.email
    signed_in = await authenticate(api, user.username)
    assert signed_in.user.state == user_pb2.USER_STATE_ACTIVE
    assert (await get_me(api, signed_in.access_token)).user.email_verified


@pytest.mark.parametrize("login_field", ["username", "email"])
async def test_verify_email_by_login_activates_the_account(
    api: Api, server: RunningServer, login_field: str
) -> None:
    user, code = await register_pending(api, server)
    login = getattr(user, login_field).upper()
    response = await api.users.VerifyEmail(
        user_service_pb2.VerifyEmailRequest(login=login, code=code)
    )
    assert response.user.user_id == user.user_id
    assert response.user.state == user_pb2.USER_STATE_ACTIVE
    assert response.user.email_verified
    await authenticate(api, user.username)


async def test_a_wrong_code_is_refused(api: Api, server: RunningServer) -> None:
    user, code = await register_pending(api, server)
    await assert_invalid_code(api.users.VerifyEmail(verify_by_id(user.user_id, other_code(code))))
    assert (await admin_get(api, user.user_id)).state == user_pb2.USER_STATE_PENDING_VERIFICATION


async def test_four_wrong_attempts_leave_the_code_usable(api: Api, server: RunningServer) -> None:
    user, code = await register_pending(api, server)
    for _ in range(4):
        await assert_invalid_code(
            api.users.VerifyEmail(verify_by_id(user.user_id, other_code(code)))
        )
    response = await api.users.VerifyEmail(verify_by_id(user.user_id, code))
    assert response.user.state == user_pb2.USER_STATE_ACTIVE


async def test_five_wrong_attempts_burn_the_code(api: Api, server: RunningServer) -> None:
    user, code = await register_pending(api, server)
    for _ in range(5):
        await assert_invalid_code(
            api.users.VerifyEmail(verify_by_id(user.user_id, other_code(code)))
        )
    await assert_invalid_code(api.users.VerifyEmail(verify_by_id(user.user_id, code)))
    assert (await admin_get(api, user.user_id)).state == user_pb2.USER_STATE_PENDING_VERIFICATION


async def test_a_code_expires_after_fifteen_minutes(
    api: Api, server: RunningServer, clock: ManualClock
) -> None:
    early, early_code = await register_pending(api, server)
    late, late_code = await register_pending(api, server)
    clock.advance(seconds=CODE_TTL - 1)
    response = await api.users.VerifyEmail(verify_by_id(early.user_id, early_code))
    assert response.user.state == user_pb2.USER_STATE_ACTIVE
    clock.advance(seconds=2)  # 901 s after the codes were sent
    await assert_invalid_code(api.users.VerifyEmail(verify_by_id(late.user_id, late_code)))
    assert (await admin_get(api, late.user_id)).state == user_pb2.USER_STATE_PENDING_VERIFICATION


async def test_a_code_works_once(api: Api, server: RunningServer) -> None:
    user, code = await register_pending(api, server)
    await api.users.VerifyEmail(verify_by_id(user.user_id, code))
    await assert_invalid_code(api.users.VerifyEmail(verify_by_id(user.user_id, code)))
    await assert_invalid_code(
        api.users.VerifyEmail(user_service_pb2.VerifyEmailRequest(login=user.username, code=code))
    )


def _mentions(value: object, code: str) -> bool:
    """Whether a stored value holds ``code`` as a whole number (not inside a longer one)."""
    if isinstance(value, dict):
        return any(_mentions(k, code) or _mentions(v, code) for k, v in value.items())
    if isinstance(value, list | set | tuple | frozenset):
        return any(_mentions(item, code) for item in value)
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("latin-1")
    return re.search(rf"(?<![0-9]){code}(?![0-9])", str(value)) is not None


async def test_codes_are_never_stored_in_plain(
    api: Api, server: RunningServer, clock: ManualClock, moto_endpoint: str
) -> None:
    user, first = await register_pending(api, server)
    clock.advance(seconds=COOLDOWN + 1)
    await api.users.ResendVerificationCode(resend(user.username))
    second = server.notifier.last_code(user.user_id)
    items = await scan_table(moto_endpoint, server.settings.table_name)
    assert any(item.get("user_id") == user.user_id for item in items)
    for code in {first, second}:
        leaking = [item for item in items if _mentions(item, code)]
        assert not leaking, f"the plain code {code} is stored: {leaking}"


# -- resending -----------------------------------------------------------------------------


async def test_resend_sends_a_new_code_and_retires_the_old_one(
    api: Api, server: RunningServer, clock: ManualClock
) -> None:
    user, old = await register_pending(api, server)
    clock.advance(seconds=COOLDOWN + 1)
    response = await api.users.ResendVerificationCode(resend(user.username))
    assert response == user_service_pb2.ResendVerificationCodeResponse()
    sent = codes_sent(server.notifier, user.user_id)
    assert len(sent) == 2
    target, new = sent[-1]
    assert target == user.email
    assert re.fullmatch(r"[0-9]{6}", new)
    if new != old:
        await assert_invalid_code(api.users.VerifyEmail(verify_by_id(user.user_id, old)))
    verified = await api.users.VerifyEmail(verify_by_id(user.user_id, new))
    assert verified.user.state == user_pb2.USER_STATE_ACTIVE


async def test_a_second_resend_within_the_cooldown_is_refused(
    api: Api, server: RunningServer, clock: ManualClock
) -> None:
    user, _ = await register_pending(api, server)
    clock.advance(seconds=COOLDOWN + 1)
    await api.users.ResendVerificationCode(resend(user.username))
    sent_before = len(codes_sent(server.notifier, user.user_id))
    clock.advance(seconds=COOLDOWN - 1)
    error = await expect_rpc_error(api.users.ResendVerificationCode(resend(user.username)))
    details = error_details(error)
    assert (details.code, details.reason) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "RESEND_COOLDOWN",
    )
    assert 0 < retry_delay(error) <= COOLDOWN
    assert len(codes_sent(server.notifier, user.user_id)) == sent_before
    clock.advance(seconds=2)  # 61 s after the first resend
    await api.users.ResendVerificationCode(resend(user.username))
    assert len(codes_sent(server.notifier, user.user_id)) == sent_before + 1
    verified = await api.users.VerifyEmail(
        verify_by_id(user.user_id, server.notifier.last_code(user.user_id))
    )
    assert verified.user.email_verified


async def test_resend_answers_unknown_accounts_like_known_ones(
    api: Api, server: RunningServer, clock: ManualClock
) -> None:
    user, _ = await register_pending(api, server)
    clock.advance(seconds=COOLDOWN + 1)
    sent_before = len(server.notifier.sent)
    known = await api.users.ResendVerificationCode(resend(user.username))
    assert len(server.notifier.sent) == sent_before + 1
    answers = [
        await api.users.ResendVerificationCode(resend(login))
        for login in (unique("ghost"), f"{unique('ghost')}@example.com")
    ]
    answers.append(
        await api.users.ResendVerificationCode(
            user_service_pb2.ResendVerificationCodeRequest(user_id=str(uuid.uuid4()))
        )
    )
    for answer in answers:
        assert answer.SerializeToString() == known.SerializeToString() == b""
    assert len(server.notifier.sent) == sent_before + 1


async def test_an_administrator_can_have_the_code_returned_instead_of_sent(
    api: Api, server: RunningServer, clock: ManualClock
) -> None:
    user, _ = await register_pending(api, server)
    clock.advance(seconds=COOLDOWN + 1)
    token = await api.admin_token()
    sent_before = len(server.notifier.sent)
    response = await api.users.ResendVerificationCode(
        resend(user.username, return_code=True), metadata=bearer(token)
    )
    assert re.fullmatch(r"[0-9]{6}", response.verification_code)
    assert len(server.notifier.sent) == sent_before
    verified = await api.users.VerifyEmail(verify_by_id(user.user_id, response.verification_code))
    assert verified.user.state == user_pb2.USER_STATE_ACTIVE


async def test_return_code_is_for_administrators_only(
    api: Api, server: RunningServer, clock: ManualClock
) -> None:
    pending, _ = await register_pending(api, server)
    member = await register_verified(api, server)
    token = (await authenticate(api, member.username)).access_token
    clock.advance(seconds=COOLDOWN + 1)
    sent_before = len(server.notifier.sent)
    for metadata in (bearer(token), ()):
        for login in (pending.username, member.username):
            error = await expect_error(
                api.users.ResendVerificationCode(resend(login, return_code=True), metadata=metadata)
            )
            assert (error.code, error.reason) == (
                grpc.StatusCode.PERMISSION_DENIED,
                "PERMISSION_DENIED",
            )
    assert len(server.notifier.sent) == sent_before


async def test_return_code_for_a_verified_account_is_a_failed_precondition(
    api: Api, server: RunningServer
) -> None:
    user = await register_verified(api, server)
    token = await api.admin_token()
    error = await expect_error(
        api.users.ResendVerificationCode(
            resend(user.username, return_code=True), metadata=bearer(token)
        )
    )
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOTHING_TO_VERIFY")


# -- signing in before verification --------------------------------------------------------


async def test_a_pending_account_cannot_sign_in_yet(api: Api, server: RunningServer) -> None:
    user, _ = await register_pending(api, server)
    right = await expect_error(authenticate(api, user.username))
    assert (right.code, right.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "EMAIL_NOT_VERIFIED")
    wrong = await expect_error(authenticate(api, user.username, "not the password at all"))
    assert (wrong.code, wrong.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
    by_email = await expect_error(authenticate(api, user.email))
    assert by_email.reason == "EMAIL_NOT_VERIFIED"


# -- changing the address ------------------------------------------------------------------


async def test_an_email_change_takes_effect_once_the_new_address_is_verified(
    api: Api, server: RunningServer
) -> None:
    user = await register_verified(api, server)
    old, new = user.email, f"{unique('moved')}@example.com"
    token = (await authenticate(api, user.username)).access_token
    updated = await api.users.UpdateUser(
        user_service_pb2.UpdateUserRequest(
            user=user_pb2.User(user_id="me", email=new),
            update_mask=field_mask_pb2.FieldMask(paths=["email"]),
        ),
        metadata=bearer(token),
    )
    assert updated.user.email == old
    assert updated.user.pending_email == new
    assert updated.user.email_verified
    target, code = codes_sent(server.notifier, user.user_id)[-1]
    assert target == new
    assert (await get_me(api, token)).user.pending_email == new
    await authenticate(api, old)

    verified = await api.users.VerifyEmail(verify_by_id(user.user_id, code))
    assert verified.user.email == new
    assert verified.user.pending_email == ""
    assert verified.user.email_verified
    assert verified.user.state == user_pb2.USER_STATE_ACTIVE
    me = (await get_me(api, token)).user
    assert (me.email, me.pending_email, me.email_verified) == (new, "", True)
    await authenticate(api, new, PASSWORD)

    reused = await api.register(email=old)
    assert reused.user.email == old
    taken = await expect_error(api.register(email=new))
    assert (taken.code, taken.reason) == (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")
