"""The outbox contract of the writers: every change writes its events in the same transaction,
and a refused change writes none (nor the code it would have issued)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tests.storage.backends import Audit, StorageBackend
from tests.storage.factories import make_code, make_event, make_record, make_user, unique
from usermgmt_server.domain import events as catalogue
from usermgmt_server.domain.errors import EmailTaken, EtagMismatch, UsernameTaken, UserNotFound
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.model import (
    CodePurpose,
    IdempotencyRecord,
    LoginFailures,
    NotificationChannel,
    OneTimeCode,
    User,
)
from usermgmt_server.domain.ports import (
    CodeConsumed,
    CodeStore,
    DuplicateRequest,
    LoginFailureStore,
    Outbox,
    UserRepository,
)

MEMORY = timedelta(days=1)


async def _pending(outbox: Outbox, backend: StorageBackend) -> list[DomainEvent]:
    return await outbox.pending(written_before=backend.clock.now() + MEMORY, limit=1000)


def _in_order(events: Sequence[DomainEvent]) -> list[DomainEvent]:
    return sorted(events, key=lambda event: (event.time, event.event_id))


def _events(user: User, backend: StorageBackend, *types: str) -> list[DomainEvent]:
    now = backend.clock.now()
    return [make_event(user.user_id, now, event_type=event_type) for event_type in types]


# -- accounts -----------------------------------------------------------------------------------


async def test_create_writes_its_events_and_code_with_the_account(
    repository: UserRepository, codes: CodeStore, outbox: Outbox, backend: StorageBackend
) -> None:
    user = replace(
        make_user(), notification_channel=NotificationChannel.SMS, phone_number="+15550001"
    )
    code = make_code(user, backend.clock.now())
    events = _events(user, backend, catalogue.USER_REGISTERED, catalogue.NOTIFY_VERIFICATION_CODE)

    await repository.create(user, make_record(user), events=events, code=code)

    assert await repository.get(user.user_id) == user
    assert await codes.get_code(user.user_id, CodePurpose.VERIFY_EMAIL) == code
    assert await _pending(outbox, backend) == _in_order(events)


async def test_a_refused_create_writes_no_event_and_no_code(
    repository: UserRepository, backend: StorageBackend
) -> None:
    holder = make_user()
    record = make_record(holder)
    await repository.create(holder, record)
    before = await backend.audit()

    async def create(user: User, idempotency: IdempotencyRecord | None = None) -> None:
        await repository.create(
            user,
            idempotency,
            events=_events(user, backend, catalogue.USER_REGISTERED),
            code=make_code(user, backend.clock.now()),
        )

    with pytest.raises(UsernameTaken):
        await create(make_user(holder.username.upper()))
    with pytest.raises(EmailTaken):
        await create(make_user(email=holder.email.upper()))
    with pytest.raises(DuplicateRequest):
        await create(make_user(), record)

    assert await backend.audit() == before


async def test_update_writes_its_events_and_replaces_the_code(
    repository: UserRepository, codes: CodeStore, outbox: Outbox, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)
    old = make_code(user, backend.clock.now(), purpose=CodePurpose.RESET_PASSWORD)
    await codes.save_code(old)
    new = make_code(user, backend.clock.now(), purpose=CodePurpose.RESET_PASSWORD)
    after = replace(user, display_name="Changed", version=user.version + 1)
    events = _events(user, backend, catalogue.USER_UPDATED, catalogue.NOTIFY_PASSWORD_RESET_CODE)

    await repository.update(user, after, events=events, code=new)

    assert await repository.get(user.user_id) == after
    assert await codes.get_code(user.user_id, CodePurpose.RESET_PASSWORD) == new
    assert await _pending(outbox, backend) == _in_order(events)


async def test_a_refused_update_writes_no_event_and_no_code(
    repository: UserRepository, codes: CodeStore, backend: StorageBackend
) -> None:
    holder = make_user()
    user = make_user()
    await repository.create(holder)
    await repository.create(user)
    newer = replace(user, display_name="Newer", version=user.version + 1)
    await repository.update(user, newer)
    before = await backend.audit()

    async def update(before: User, after: User, consume: OneTimeCode | None = None) -> None:
        await repository.update(
            before,
            after,
            consume_code=consume,
            events=_events(before, backend, catalogue.USER_UPDATED),
            code=make_code(before, backend.clock.now(), purpose=CodePurpose.RESET_PASSWORD),
        )

    with pytest.raises(EtagMismatch):
        await update(user, replace(user, display_name="Stale", version=user.version + 1))
    taken = replace(newer, username=holder.username, username_key=holder.username_key, version=3)
    with pytest.raises(UsernameTaken):
        await update(newer, taken)
    verified = replace(newer, email_verified=True, version=3)
    with pytest.raises(CodeConsumed):
        await update(newer, verified, make_code(user, backend.clock.now()))
    ghost = make_user()
    with pytest.raises(UserNotFound):
        await update(ghost, replace(ghost, version=2))

    assert await backend.audit() == before


async def test_an_update_can_consume_a_code_and_issue_one_of_the_same_purpose(
    repository: UserRepository, codes: CodeStore, outbox: Outbox, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)
    first = make_code(user, backend.clock.now())
    await codes.save_code(first)
    second = make_code(user, backend.clock.now())
    changed = replace(user, pending_email="next@example.com", version=user.version + 1)
    events = _events(user, backend, catalogue.NOTIFY_VERIFICATION_CODE)

    await repository.update(user, changed, consume_code=first, code=second, events=events)

    assert await codes.get_code(user.user_id, CodePurpose.VERIFY_EMAIL) == second
    assert await _pending(outbox, backend) == events
    again = replace(changed, version=changed.version + 1)
    third = make_code(user, backend.clock.now())
    with pytest.raises(CodeConsumed):
        await repository.update(
            changed, again, consume_code=first, code=third, events=_events(user, backend, "x")
        )
    assert await codes.get_code(user.user_id, CodePurpose.VERIFY_EMAIL) == second
    assert await _pending(outbox, backend) == events


async def test_of_concurrent_updates_only_the_winner_writes_its_events(
    repository: UserRepository, outbox: Outbox, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)
    first = replace(user, display_name="First", version=user.version + 1)
    second = replace(user, display_name="Second", version=user.version + 1)
    first_events = _events(user, backend, catalogue.USER_UPDATED)
    second_events = _events(user, backend, catalogue.USER_UPDATED)

    results = await asyncio.gather(
        repository.update(user, first, events=first_events),
        repository.update(user, second, events=second_events),
        return_exceptions=True,
    )

    assert sorted(type(result).__name__ for result in results) == ["EtagMismatch", "NoneType"]
    assert await _pending(outbox, backend) == (
        first_events if results[0] is None else second_events
    )


async def test_delete_writes_its_events_unless_refused(
    repository: UserRepository, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)
    newer = replace(user, display_name="Newer", version=user.version + 1)
    await repository.update(user, newer)
    before = await backend.audit()

    with pytest.raises(EtagMismatch):
        await repository.delete(user, events=_events(user, backend, catalogue.USER_DELETED))
    assert await backend.audit() == before

    [event] = _events(user, backend, catalogue.USER_DELETED)
    await repository.delete(newer, events=[event])
    assert await backend.audit() == Audit(outbox={event.event_id: event})


# -- codes and sign-in failures -----------------------------------------------------------------


async def test_save_code_writes_its_events(
    repository: UserRepository, codes: CodeStore, outbox: Outbox, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)
    await codes.save_code(make_code(user, backend.clock.now()))
    code = make_code(user, backend.clock.now())
    events = _events(user, backend, catalogue.NOTIFY_VERIFICATION_CODE)

    await codes.save_code(code, events=events)

    assert await codes.get_code(user.user_id, CodePurpose.VERIFY_EMAIL) == code
    assert await _pending(outbox, backend) == events


async def test_a_lock_writes_its_events_only_when_it_changes_the_lock(
    failures: LoginFailureStore, outbox: Outbox, backend: StorageBackend
) -> None:
    subject = unique("subject")
    now = backend.clock.now()
    await failures.record_failure(subject, expires_at=now + MEMORY)
    long, short = now + timedelta(minutes=10), now + timedelta(minutes=2)
    written: list[DomainEvent] = []

    async def lock(until: datetime | None, *, hard: bool, changes: bool) -> None:
        events = [make_event(subject, backend.clock.now(), event_type=catalogue.USER_LOCKED)]
        await failures.lock(subject, until=until, hard=hard, events=events)
        if changes:
            written.extend(events)
        assert await _pending(outbox, backend) == _in_order(written)

    await lock(long, hard=False, changes=True)
    await lock(short, hard=False, changes=False)
    await lock(long, hard=False, changes=False)
    assert await failures.get_failures(subject) == LoginFailures(count=1, locked_until=long)
    await lock(long + timedelta(microseconds=1), hard=False, changes=True)
    await lock(None, hard=True, changes=True)
    await lock(None, hard=True, changes=False)
    await lock(long + timedelta(days=9), hard=False, changes=False)
    stored = await failures.get_failures(subject)
    assert stored.hard_locked and stored.count == 1


async def test_a_lock_of_a_subject_without_failures_writes_its_events(
    failures: LoginFailureStore, outbox: Outbox, backend: StorageBackend
) -> None:
    subject = unique("subject")
    until = backend.clock.now() + timedelta(minutes=1)
    events = [make_event(subject, backend.clock.now(), event_type=catalogue.USER_LOCKED)]

    await failures.lock(subject, until=until, hard=False, events=events)

    assert (await failures.get_failures(subject)).locked_until == until
    assert await _pending(outbox, backend) == events


async def test_clear_failures_writes_its_events(
    failures: LoginFailureStore, outbox: Outbox, backend: StorageBackend
) -> None:
    subject = unique("subject")
    await failures.record_failure(subject, expires_at=backend.clock.now() + MEMORY)
    await failures.lock(subject, until=None, hard=True)
    first = [make_event(subject, backend.clock.now(), event_type=catalogue.USER_UNLOCKED)]
    second = [make_event(subject, backend.clock.now(), event_type=catalogue.USER_UNLOCKED)]

    await failures.clear_failures(subject, events=first)
    await failures.clear_failures(subject, events=second)

    assert await failures.get_failures(subject) == LoginFailures()
    assert await _pending(outbox, backend) == _in_order(first + second)
