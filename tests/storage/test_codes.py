"""The ``CodeStore`` contract: one code per user and purpose, shared attempt counts, expiry."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from tests.storage.backends import StorageBackend
from tests.storage.factories import make_code, make_user, unique
from usermgmt_server.domain.model import CodePurpose
from usermgmt_server.domain.ports import CodeStore


async def test_a_saved_code_reads_back_exactly(codes: CodeStore, backend: StorageBackend) -> None:
    user = make_user()
    code = replace(
        make_code(user, backend.clock.now(), purpose=CodePurpose.RESET_PASSWORD),
        target="Someone@Example.com",
    )

    await codes.save_code(code)

    assert await codes.get_code(user.user_id, CodePurpose.RESET_PASSWORD) == code
    assert await codes.get_code(user.user_id, CodePurpose.VERIFY_EMAIL) is None
    assert await codes.get_code(unique("nobody"), CodePurpose.RESET_PASSWORD) is None


async def test_saving_replaces_the_code_and_its_attempts(
    codes: CodeStore, backend: StorageBackend
) -> None:
    user = make_user()
    now = backend.clock.now()
    first = make_code(user, now)
    await codes.save_code(first)
    await codes.count_attempt(user.user_id, first.purpose, max_attempts=5, now=now)

    second = make_code(user, now + timedelta(seconds=30))
    await codes.save_code(second)

    assert await codes.get_code(user.user_id, first.purpose) == second
    counted = await codes.count_attempt(user.user_id, first.purpose, max_attempts=5, now=now)
    assert counted == replace(second, attempts=1)


async def test_expired_codes_are_absent(codes: CodeStore, backend: StorageBackend) -> None:
    user = make_user()
    code = make_code(user, backend.clock.now(), ttl=timedelta(minutes=10))
    await codes.save_code(code)

    backend.clock.advance(timedelta(minutes=10) - timedelta(microseconds=1))
    assert await codes.get_code(user.user_id, code.purpose) == code
    backend.clock.advance(timedelta(microseconds=1))
    assert await codes.get_code(user.user_id, code.purpose) is None
    now = backend.clock.now()
    assert await codes.count_attempt(user.user_id, code.purpose, max_attempts=5, now=now) is None


async def test_attempts_are_counted_up_to_the_limit(
    codes: CodeStore, backend: StorageBackend
) -> None:
    user = make_user()
    code = make_code(user, backend.clock.now())
    await codes.save_code(code)
    now = backend.clock.now()

    counted = [
        await codes.count_attempt(user.user_id, code.purpose, max_attempts=3, now=now)
        for _ in range(4)
    ]

    assert counted[:3] == [replace(code, attempts=n) for n in (1, 2, 3)]
    assert counted[3] is None
    stored = await codes.get_code(user.user_id, code.purpose)
    assert stored is not None and stored.attempts == 3


async def test_concurrent_attempts_never_exceed_the_limit(
    codes: CodeStore, backend: StorageBackend
) -> None:
    user = make_user()
    code = make_code(user, backend.clock.now())
    await codes.save_code(code)
    now = backend.clock.now()

    results = await asyncio.gather(
        *(
            codes.count_attempt(user.user_id, code.purpose, max_attempts=5, now=now)
            for _ in range(10)
        )
    )

    counted = [result for result in results if result is not None]
    assert sorted(result.attempts for result in counted) == [1, 2, 3, 4, 5]


async def test_attempts_at_or_after_expiry_and_on_missing_codes_are_refused(
    codes: CodeStore, backend: StorageBackend
) -> None:
    user = make_user()
    code = make_code(user, backend.clock.now())
    await codes.save_code(code)

    late = await codes.count_attempt(
        user.user_id, code.purpose, max_attempts=5, now=code.expires_at
    )
    missing = await codes.count_attempt(
        unique("nobody"), code.purpose, max_attempts=5, now=backend.clock.now()
    )

    assert late is None and missing is None
    assert await codes.get_code(user.user_id, code.purpose) == code


async def test_deleting_a_code_is_idempotent(codes: CodeStore, backend: StorageBackend) -> None:
    user = make_user()
    code = make_code(user, backend.clock.now())
    await codes.save_code(code)

    await codes.delete_code(user.user_id, code.purpose)
    await codes.delete_code(user.user_id, code.purpose)

    assert await codes.get_code(user.user_id, code.purpose) is None
    assert (await backend.audit()).codes == {}
