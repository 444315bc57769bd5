"""Account enumeration: an unknown login, a wrong password, a locked account and a disabled
account must look the same to a caller, in their bytes and in their timing."""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable

import grpc
import pytest

from tests.e2e.harness import (
    PASSWORD,
    Api,
    authenticate,
    bearer,
    error_bytes,
    error_details,
    expect_rpc_error,
    running_server,
    unique,
)
from usermgmt.v1 import user_service_pb2
from usermgmt_server.adapters.security.system import ManualClock

ROUNDS = 200
WARM_UP = 5
WRONG = "wrong horse battery"
# Sign-in locks only after this many failures here, so spreading the wrong-password and
# disabled-account calls over a few accounts keeps each of them below it.
THRESHOLD = 50
SPREAD = 5
OWASP_ARGON2 = {"USERMGMT_ARGON2_TIME_COST": "2", "USERMGMT_ARGON2_MEMORY_KIB": "19456"}


@pytest.mark.slow
async def test_failed_sign_ins_are_indistinguishable(moto_endpoint: str) -> None:
    # The manual clock stands still, so the locked account stays locked throughout.
    clock = ManualClock()
    async with (
        running_server(
            moto_endpoint,
            clock=clock,
            USERMGMT_LOCKOUT_THRESHOLD=str(THRESHOLD),
            **OWASP_ARGON2,
        ) as server,
        server.channel() as channel,
    ):
        api = Api(channel)
        admin = await api.admin_token()
        wrong_password = [(await api.register()).user.username for _ in range(SPREAD)]
        disabled = []
        for _ in range(SPREAD):
            user = (await api.register()).user
            await api.users.DisableUser(
                user_service_pb2.DisableUserRequest(user_id=user.user_id), metadata=bearer(admin)
            )
            disabled.append(user.username)
        locked = (await api.register()).user.username
        for _ in range(THRESHOLD):
            await expect_rpc_error(authenticate(api, locked, WRONG))

        def unknown_login(index: int) -> tuple[str, str]:
            return unique("ghost"), WRONG

        calls: dict[str, Callable[[int], tuple[str, str]]] = {
            "unknown login": unknown_login,
            "wrong password": lambda index: (wrong_password[index % SPREAD], WRONG),
            "locked account": lambda index: (locked, PASSWORD),
            "disabled account": lambda index: (disabled[index % SPREAD], PASSWORD),
        }
        seen: dict[str, set[tuple[object, ...]]] = {name: set() for name in calls}
        timings: dict[str, list[float]] = {name: [] for name in calls}
        order = list(calls)
        shuffle = random.Random(uuid.uuid4().int).shuffle
        for index in range(WARM_UP + ROUNDS):
            shuffle(order)
            for name in order:
                login, password = calls[name](index)
                started = time.perf_counter()
                error = await expect_rpc_error(authenticate(api, login, password))
                elapsed = time.perf_counter() - started
                seen[name].add(error_bytes(error))
                if index >= WARM_UP:
                    timings[name].append(elapsed)

        details = error_details(await expect_rpc_error(authenticate(api, locked, PASSWORD)))
        assert (details.code, details.reason) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_CREDENTIALS",
        )
        distinct = set().union(*seen.values())
        assert len(distinct) == 1, f"the answers differ: {seen}"

        medians = {name: statistics.median(samples) for name, samples in timings.items()}
        report = ", ".join(f"{name} {median * 1000:.1f} ms" for name, median in medians.items())
        fastest, slowest = min(medians.values()), max(medians.values())
        print(f"\nsign-in medians over 200 interleaved calls each: {report}")
        assert slowest <= 1.2 * fastest, f"median sign-in times differ by more than 20 %: {report}"
