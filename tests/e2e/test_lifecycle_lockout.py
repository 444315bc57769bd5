"""Progressive lockout after failed sign-ins: identical answers while locked, the doubling
back-off and its cap, the hard lock and what clears it, and counters shared by instances."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from tests.e2e.harness import (
    PASSWORD,
    Api,
    RunningServer,
    authenticate,
    bearer,
    error_bytes,
    error_details,
    expect_rpc_error,
    running_server,
)
from usermgmt.v1 import user_pb2, user_service_pb2
from usermgmt_server.adapters.security.system import ManualClock

WRONG = "not the right password"
NEW_PASSWORD = "a fresh pass phrase after reset"
THRESHOLD = 5
MAX_DELAY = 900
HARD_LIMIT = 100
MARGIN = 0.05  # how far past a lock the tests move the clock
DAY = 24 * 3600


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
async def server(moto_endpoint: str, clock: ManualClock) -> AsyncIterator[RunningServer]:
    """A server with the default lockout policy on a clock the tests move."""
    async with running_server(moto_endpoint, clock=clock) as started:
        yield started


def back_off(failures: int) -> float:
    """The documented lock after the ``failures``-th consecutive failure (0: none)."""
    if failures < THRESHOLD:
        return 0.0
    return float(min(2 ** (failures - THRESHOLD), MAX_DELAY))


async def new_login(api: Api) -> str:
    return (await api.register()).user.username


async def fail(api: Api, login: str) -> grpc.aio.AioRpcError:
    """One sign-in with a wrong password; returns its error."""
    error = await expect_rpc_error(authenticate(api, login, WRONG))
    details = error_details(error)
    assert (details.code, details.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    return error


async def fail_repeatedly(api: Api, clock: ManualClock, login: str, count: int) -> None:
    """``count`` failures, each after the lock of the previous one ran out (so each counts);
    the lock of the last one is left in place."""
    for failure in range(1, count + 1):
        await fail(api, login)
        if failure < count and back_off(failure):
            clock.advance(seconds=back_off(failure) + MARGIN)


async def assert_locked(api: Api, login: str, reference: grpc.aio.AioRpcError) -> None:
    """The right password is refused with exactly the bytes of a wrong one."""
    error = await expect_rpc_error(authenticate(api, login, PASSWORD))
    assert error_bytes(error) == error_bytes(reference)


async def test_five_failures_lock_the_account_for_a_second(api: Api, clock: ManualClock) -> None:
    login = await new_login(api)
    failures = [await fail(api, login) for _ in range(THRESHOLD)]
    assert len({error_bytes(error) for error in failures}) == 1
    await assert_locked(api, login, failures[0])
    clock.advance(seconds=0.5)
    await assert_locked(api, login, failures[0])
    clock.advance(seconds=0.5 + MARGIN)  # just over 1 s after the 5th failure
    await authenticate(api, login)
    # The success cleared the counter: four new failures do not lock, a fifth does.
    for _ in range(THRESHOLD - 1):
        await fail(api, login)
    await authenticate(api, login)
    for _ in range(THRESHOLD):
        await fail(api, login)
    await assert_locked(api, login, failures[0])


async def test_each_further_failure_doubles_the_lock(api: Api, clock: ManualClock) -> None:
    login = await new_login(api)
    reference = None
    for _ in range(THRESHOLD):
        reference = await fail(api, login)
    assert reference is not None
    clock.advance(seconds=1 + MARGIN)
    await fail(api, login)  # the 6th failure, after the first lock ran out
    clock.advance(seconds=1 + MARGIN)
    await assert_locked(api, login, reference)  # more than 1 s ...
    clock.advance(seconds=1 - MARGIN)
    await authenticate(api, login)  # ... but no more than 2 s


async def test_the_lock_never_exceeds_fifteen_minutes(api: Api, clock: ManualClock) -> None:
    login = await new_login(api)
    # Failure 15 would lock for 1024 s without the cap (2 ** 10).
    await fail_repeatedly(api, clock, login, 14)
    clock.advance(seconds=back_off(14) + MARGIN)
    reference = await fail(api, login)
    clock.advance(seconds=MAX_DELAY - 1)
    await assert_locked(api, login, reference)  # the lock did grow to the cap ...
    clock.advance(seconds=1 + MARGIN)
    await authenticate(api, login)  # ... and no further
    # Many more failures, each after the previous lock: the lock still ends after 900 s.
    await fail_repeatedly(api, clock, login, 30)
    clock.advance(seconds=MAX_DELAY + MARGIN)
    await authenticate(api, login)


async def test_ninety_nine_failures_do_not_lock_for_good(api: Api, clock: ManualClock) -> None:
    login = await new_login(api)
    await fail_repeatedly(api, clock, login, HARD_LIMIT - 1)
    clock.advance(seconds=MAX_DELAY + MARGIN)
    await authenticate(api, login)


async def test_a_hundred_failures_lock_until_an_administrator_unlocks(
    api: Api, server: RunningServer, clock: ManualClock
) -> None:
    registered = (await api.register()).user
    login = registered.username
    await fail_repeatedly(api, clock, login, HARD_LIMIT)
    reference = await expect_rpc_error(authenticate(api, login, WRONG))
    clock.advance(seconds=MAX_DELAY + MARGIN)
    await assert_locked(api, login, reference)
    clock.advance(seconds=2 * DAY)
    await assert_locked(api, login, reference)
    admin = await api.admin_token()
    response = await api.users.UnlockUser(
        user_service_pb2.UnlockUserRequest(user_id=registered.user_id), metadata=bearer(admin)
    )
    assert response == user_service_pb2.UnlockUserResponse()
    signed = await authenticate(api, login)
    assert signed.user.state == user_pb2.USER_STATE_ACTIVE


async def test_a_password_reset_clears_a_hard_lock(
    api: Api, server: RunningServer, clock: ManualClock
) -> None:
    registered = (await api.register()).user
    login = registered.username
    await fail_repeatedly(api, clock, login, HARD_LIMIT)
    clock.advance(seconds=DAY)
    reference = await expect_rpc_error(authenticate(api, login, WRONG))
    await assert_locked(api, login, reference)
    await api.users.RequestPasswordReset(
        user_service_pb2.RequestPasswordResetRequest(login=registered.email)
    )
    code = server.notifier.last_code(registered.user_id, "RESET_PASSWORD")
    await api.users.ResetPassword(
        user_service_pb2.ResetPasswordRequest(login=login, code=code, new_password=NEW_PASSWORD)
    )
    await authenticate(api, login, NEW_PASSWORD)


async def test_two_instances_count_failures_together(
    api: Api, server: RunningServer, clock: ManualClock, moto_endpoint: str
) -> None:
    login = await new_login(api)
    async with (
        running_server(
            moto_endpoint, server.settings.table_name, create=False, clock=clock
        ) as second,
        second.channel() as channel,
    ):
        apis = [api, Api(channel)]
        reference = None
        for failure in range(THRESHOLD):
            reference = await fail(apis[failure % 2], login)
        assert reference is not None
        for instance in apis:
            await assert_locked(instance, login, reference)
        clock.advance(seconds=1 + MARGIN)
        await authenticate(apis[1], login)
        await authenticate(apis[0], login)
