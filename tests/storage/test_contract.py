"""The storage contract: what every ``UserRepository`` backend must do (see ``backends``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from tests.storage.backends import Audit, Population, StorageBackend
from tests.storage.factories import fullwidth, make_code, make_record, make_user, unique
from usermgmt_server.domain.errors import (
    EmailTaken,
    EtagMismatch,
    InvalidPageToken,
    UsernameTaken,
    UserNotFound,
)
from usermgmt_server.domain.identifiers import identifier_key
from usermgmt_server.domain.model import CodePurpose, NotificationChannel, User, UserState
from usermgmt_server.domain.ports import (
    CodeConsumed,
    CodeStore,
    DuplicateRequest,
    LoginFailureStore,
    UserRepository,
)

# -- create and read ----------------------------------------------------------------------------


async def test_create_then_get_returns_the_same_account(repository: UserRepository) -> None:
    user = make_user(
        "Ada.Lovelace",
        "Ada@Example.COM",
        state=UserState.PENDING_VERIFICATION,
        roles=("admin", "billing.viewer"),
        display_name="Ada Lovelace",
        email_verified=True,
        version=7,
        password_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
    )
    await repository.create(user)

    stored = await repository.get(user.user_id)
    assert stored == user
    assert stored is not None
    assert stored.create_time == user.create_time and stored.create_time.tzinfo is not None
    assert stored.update_time.microsecond == user.update_time.microsecond
    assert await repository.find_by_username(identifier_key("ada.lovelace")) == user
    assert await repository.find_by_email(identifier_key("ada@example.com")) == user


async def test_times_in_any_zone_and_empty_fields_round_trip(
    repository: UserRepository, backend: StorageBackend
) -> None:
    east = timezone(timedelta(hours=5, minutes=30))
    user = make_user(email="", roles=(), display_name="")
    user = replace(user, create_time=user.create_time.astimezone(east))
    await repository.create(user)

    stored = await repository.get(user.user_id)
    assert stored == user
    assert stored is not None and stored.roles == () and stored.email_key == ""
    assert await repository.find_by_email("") is None
    audit = await backend.audit()
    assert audit.email_guards == {}
    audit.assert_consistent()


async def test_session_and_pending_fields_round_trip(repository: UserRepository) -> None:
    east = timezone(timedelta(hours=-3))
    user = replace(
        make_user(),
        tokens_valid_after=datetime(2025, 6, 7, 8, 9, 10, 654321, tzinfo=east),
        password_change_required=True,
        pending_email="Next@Example.org",
    )
    await repository.create(user)

    stored = await repository.get(user.user_id)
    assert stored == user
    assert stored is not None and stored.tokens_valid_after == user.tokens_valid_after
    assert stored.tokens_valid_after is not None
    assert stored.tokens_valid_after.microsecond == 654321
    plain = make_user()
    await repository.create(plain)
    stored_plain = await repository.get(plain.user_id)
    assert stored_plain is not None
    assert stored_plain.tokens_valid_after is None
    assert stored_plain.password_change_required is False
    assert stored_plain.pending_email == ""


async def test_notification_preferences_round_trip_and_update(repository: UserRepository) -> None:
    user = replace(
        make_user(), notification_channel=NotificationChannel.SMS, phone_number="+447700900123"
    )
    await repository.create(user)
    assert await repository.get(user.user_id) == user
    assert make_user().notification_channel is NotificationChannel.EMAIL

    silent = replace(
        user, notification_channel=NotificationChannel.NONE, phone_number="", version=2
    )
    await repository.update(user, silent)
    assert await repository.get(user.user_id) == silent
    assert await repository.find_by_username(user.username_key) == silent
    by_mail = replace(silent, notification_channel=NotificationChannel.EMAIL, version=3)
    await repository.update(silent, by_mail)
    assert await repository.get(user.user_id) == by_mail


async def test_update_sets_and_clears_the_new_fields(repository: UserRepository) -> None:
    user = make_user()
    await repository.create(user)
    revoked = replace(
        user,
        tokens_valid_after=user.update_time + timedelta(seconds=5, microseconds=7),
        password_change_required=True,
        pending_email="pending@example.com",
        version=user.version + 1,
    )
    await repository.update(user, revoked)
    assert await repository.get(user.user_id) == revoked

    cleared = replace(
        revoked,
        tokens_valid_after=None,
        password_change_required=False,
        pending_email="",
        version=revoked.version + 1,
    )
    await repository.update(revoked, cleared)
    assert await repository.get(user.user_id) == cleared


async def test_unknown_accounts_are_none(repository: UserRepository) -> None:
    assert await repository.get(unique("missing")) is None
    assert await repository.find_by_username(unique("missing")) is None
    assert await repository.find_by_email(f"{unique('missing')}@example.com") is None
    assert await repository.get_idempotency_record(unique("missing")) is None


# -- uniqueness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["ALICE", "alice", fullwidth("Alice"), fullwidth("ALICE")])
async def test_usernames_are_unique_after_normalisation(
    repository: UserRepository, backend: StorageBackend, spelling: str
) -> None:
    first = make_user("Alice")
    await repository.create(first)
    before = await backend.audit()

    with pytest.raises(UsernameTaken):
        await repository.create(make_user(spelling))

    assert await backend.audit() == before
    assert await repository.find_by_username(identifier_key(spelling)) == first


@pytest.mark.parametrize(
    "spelling", ["BOB@EXAMPLE.COM", "bob@example.com", fullwidth("Bob") + "@example.com"]
)
async def test_emails_are_unique_after_normalisation(
    repository: UserRepository, backend: StorageBackend, spelling: str
) -> None:
    first = make_user(email="Bob@Example.com")
    await repository.create(first)
    before = await backend.audit()

    with pytest.raises(EmailTaken):
        await repository.create(make_user(email=spelling))

    assert await backend.audit() == before
    assert await repository.find_by_email(identifier_key(spelling)) == first


async def test_concurrent_creates_with_one_email_admit_exactly_one(
    repository: UserRepository, backend: StorageBackend
) -> None:
    email = f"{unique('race')}@example.com"
    candidates = [make_user(email=email) for _ in range(50)]

    results = await asyncio.gather(
        *(repository.create(user) for user in candidates), return_exceptions=True
    )

    winners = [user for user, result in zip(candidates, results, strict=True) if result is None]
    assert len(winners) == 1
    assert all(isinstance(result, EmailTaken) for result in results if result is not None)
    audit = await backend.audit()
    audit.assert_consistent()
    assert list(audit.users) == [winners[0].user_id]
    assert audit.email_guards == {identifier_key(email): winners[0].user_id}


async def test_holders_name_the_account_of_each_held_key(
    repository: UserRepository, backend: StorageBackend
) -> None:
    ada, bob = make_user("Ada"), make_user("Bob", email="")
    for user in (ada, bob):
        await repository.create(user)
    free = identifier_key(unique("free"))

    holders = await repository.holders(
        username_keys=[ada.username_key, bob.username_key, free, ada.username_key],
        email_keys=[ada.email_key, f"{free}@example.com"],
    )

    assert holders.usernames == {ada.username_key: ada.user_id, bob.username_key: bob.user_id}
    assert holders.emails == {ada.email_key: ada.user_id}
    empty = await repository.holders(username_keys=[], email_keys=[])
    assert (empty.usernames, empty.emails) == ({}, {})


async def test_holders_read_more_keys_than_one_batch_holds(
    repository: UserRepository, backend: StorageBackend
) -> None:
    users = [make_user() for _ in range(60)]
    await backend.seed(users)

    holders = await repository.holders(
        username_keys=[user.username_key for user in users],
        email_keys=[user.email_key for user in users],
    )

    assert holders.usernames == {user.username_key: user.user_id for user in users}
    assert holders.emails == {user.email_key: user.user_id for user in users}


# -- updates ------------------------------------------------------------------------------------


def _renamed(user: User, username: str, email: str) -> User:
    return replace(
        user,
        username=username,
        username_key=identifier_key(username),
        email=email,
        email_key=identifier_key(email) if email else "",
        version=user.version + 1,
        update_time=user.update_time + timedelta(seconds=1),
    )


async def test_update_moves_both_guards(
    repository: UserRepository, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)
    after = _renamed(user, unique("Renamed"), f"{unique('New')}@Example.com")

    await repository.update(user, after)

    assert await repository.get(user.user_id) == after
    assert await repository.find_by_username(after.username_key) == after
    assert await repository.find_by_email(after.email_key) == after
    assert await repository.find_by_username(user.username_key) is None
    assert await repository.find_by_email(user.email_key) is None
    with pytest.raises(UsernameTaken):
        await repository.create(make_user(after.username.upper()))
    with pytest.raises(EmailTaken):
        await repository.create(make_user(email=after.email.upper()))
    reuser = make_user(user.username, user.email)
    await repository.create(reuser)
    assert await repository.find_by_username(user.username_key) == reuser
    (await backend.audit()).assert_consistent()


async def test_update_of_other_fields_keeps_the_guards(
    repository: UserRepository, backend: StorageBackend
) -> None:
    user = make_user(roles=("admin",))
    await repository.create(user)
    after = replace(
        user,
        username=user.username.upper(),
        display_name="Shown Name",
        state=UserState.DISABLED,
        roles=(),
        email_verified=True,
        version=user.version + 1,
    )

    await repository.update(user, after)

    assert await repository.get(user.user_id) == after
    assert await repository.find_by_username(user.username_key) == after
    (await backend.audit()).assert_consistent()


async def test_update_can_add_and_remove_the_email(
    repository: UserRepository, backend: StorageBackend
) -> None:
    user = make_user(email="")
    await repository.create(user)
    with_email = _renamed(user, user.username, f"{unique('added')}@example.com")
    await repository.update(user, with_email)
    assert await repository.find_by_email(with_email.email_key) == with_email
    (await backend.audit()).assert_consistent()

    without = _renamed(with_email, with_email.username, "")
    await repository.update(with_email, without)

    assert await repository.get(user.user_id) == without
    assert await repository.find_by_email(with_email.email_key) is None
    audit = await backend.audit()
    assert audit.email_guards == {}
    audit.assert_consistent()


async def test_failed_update_changes_nothing(
    repository: UserRepository, backend: StorageBackend
) -> None:
    holder = make_user()
    user = make_user()
    await repository.create(holder)
    await repository.create(user)
    before = await backend.audit()

    with pytest.raises(EmailTaken):
        await repository.update(user, _renamed(user, unique("Moved"), holder.email.upper()))
    with pytest.raises(UsernameTaken):
        await repository.update(user, _renamed(user, holder.username, user.email))

    assert await backend.audit() == before
    assert await repository.get(user.user_id) == user


async def test_concurrent_updates_from_one_version_admit_exactly_one(
    repository: UserRepository,
) -> None:
    user = make_user()
    await repository.create(user)
    first = _renamed(user, unique("First"), user.email)
    second = replace(user, display_name="Second", version=user.version + 1)

    results = await asyncio.gather(
        repository.update(user, first), repository.update(user, second), return_exceptions=True
    )

    assert sorted(type(result).__name__ for result in results) == ["EtagMismatch", "NoneType"]
    winner = first if results[0] is None else second
    assert await repository.get(user.user_id) == winner


async def test_stale_update_is_rejected(repository: UserRepository) -> None:
    user = make_user()
    await repository.create(user)
    newer = replace(user, display_name="Newer", version=2)
    await repository.update(user, newer)

    with pytest.raises(EtagMismatch):
        await repository.update(user, replace(user, display_name="Stale", version=2))

    assert await repository.get(user.user_id) == newer


async def test_changes_to_a_vanished_account_are_not_found(
    repository: UserRepository, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)
    await repository.delete(user)

    with pytest.raises(UserNotFound):
        await repository.update(user, replace(user, display_name="Ghost", version=2))
    with pytest.raises(UserNotFound):
        await repository.update(user, _renamed(user, unique("Ghost"), user.email))
    with pytest.raises(UserNotFound):
        await repository.delete(user)
    with pytest.raises(UserNotFound):
        await repository.replace_password_hash(user, "$argon2id$new")
    assert await backend.audit() == Audit()


# -- consuming codes ----------------------------------------------------------------------------


async def test_update_consumes_the_code_with_the_change(
    repository: UserRepository, codes: CodeStore, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)
    code = make_code(user, backend.clock.now())
    other = make_code(user, backend.clock.now(), purpose=CodePurpose.RESET_PASSWORD)
    await codes.save_code(code)
    await codes.save_code(other)
    verified = replace(user, email_verified=True, version=user.version + 1)

    await repository.update(user, verified, consume_code=code)

    assert await repository.get(user.user_id) == verified
    assert await codes.get_code(user.user_id, CodePurpose.VERIFY_EMAIL) is None
    assert await codes.get_code(user.user_id, CodePurpose.RESET_PASSWORD) == other


async def test_a_replaced_or_missing_code_is_consumed_and_nothing_changes(
    repository: UserRepository, codes: CodeStore, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)
    old = make_code(user, backend.clock.now())
    new = make_code(user, backend.clock.now())
    await codes.save_code(new)
    before = await backend.audit()
    verified = replace(user, email_verified=True, version=user.version + 1)

    with pytest.raises(CodeConsumed):
        await repository.update(user, verified, consume_code=old)
    assert await backend.audit() == before

    await codes.delete_code(user.user_id, CodePurpose.VERIFY_EMAIL)
    with pytest.raises(CodeConsumed):
        await repository.update(user, verified, consume_code=new)
    assert await repository.get(user.user_id) == user


async def test_a_code_is_consumed_once_under_concurrency(
    repository: UserRepository, codes: CodeStore, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)
    code = make_code(user, backend.clock.now())
    await codes.save_code(code)
    first = replace(user, display_name="First", version=user.version + 1)
    second = replace(user, display_name="Second", version=user.version + 1)

    results = await asyncio.gather(
        repository.update(user, first, consume_code=code),
        repository.update(user, second, consume_code=code),
        return_exceptions=True,
    )

    assert sorted(type(result).__name__ for result in results) == ["CodeConsumed", "NoneType"]
    assert await repository.get(user.user_id) == (first if results[0] is None else second)


async def test_other_update_failures_keep_their_errors_with_a_code(
    repository: UserRepository, codes: CodeStore, backend: StorageBackend
) -> None:
    holder = make_user()
    user = make_user()
    await repository.create(holder)
    await repository.create(user)
    code = make_code(user, backend.clock.now())
    await codes.save_code(code)

    with pytest.raises(EtagMismatch):
        await repository.update(
            replace(user, version=9), replace(user, version=10), consume_code=code
        )
    with pytest.raises(EmailTaken):
        await repository.update(
            user, _renamed(user, user.username, holder.email), consume_code=code
        )
    assert await codes.get_code(user.user_id, CodePurpose.VERIFY_EMAIL) == code


# -- deletion -----------------------------------------------------------------------------------


async def test_delete_frees_both_guards(
    repository: UserRepository, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)

    await repository.delete(user)

    assert await repository.get(user.user_id) is None
    assert await repository.find_by_username(user.username_key) is None
    assert await repository.find_by_email(user.email_key) is None
    again = make_user(user.username.upper(), user.email.upper())
    await repository.create(again)
    assert await repository.find_by_email(user.email_key) == again
    (await backend.audit()).assert_consistent()


async def test_delete_removes_codes_and_login_failures(
    repository: UserRepository,
    codes: CodeStore,
    failures: LoginFailureStore,
    backend: StorageBackend,
) -> None:
    user = make_user()
    await repository.create(user)
    for purpose in CodePurpose:
        await codes.save_code(make_code(user, backend.clock.now(), purpose=purpose))
    await failures.record_failure(user.user_id, expires_at=backend.clock.now() + timedelta(days=1))
    await failures.lock(user.user_id, until=None, hard=True)

    await repository.delete(user)

    assert await backend.audit() == Audit()


async def test_delete_of_a_changed_account_is_rejected(
    repository: UserRepository, backend: StorageBackend
) -> None:
    user = make_user()
    await repository.create(user)
    newer = replace(user, display_name="Newer", version=2)
    await repository.update(user, newer)
    before = await backend.audit()

    with pytest.raises(EtagMismatch):
        await repository.delete(user)

    assert await backend.audit() == before


# -- idempotency --------------------------------------------------------------------------------


async def test_idempotency_key_conflict_writes_nothing(
    repository: UserRepository, backend: StorageBackend
) -> None:
    first = make_user()
    record = make_record(first)
    await repository.create(first, record)
    assert await repository.get_idempotency_record(record.key) == record
    before = await backend.audit()

    second = make_user()
    with pytest.raises(DuplicateRequest):
        await repository.create(second, replace(record, user_id=second.user_id))
    # The idempotency conflict wins even when the username is taken too.
    with pytest.raises(DuplicateRequest):
        await repository.create(make_user(first.username), record)

    assert await backend.audit() == before
    assert await repository.get(second.user_id) is None
    assert await repository.get_idempotency_record(record.key) == record


async def test_expired_idempotency_records_no_longer_count(
    repository: UserRepository, backend: StorageBackend
) -> None:
    first = make_user()
    record = make_record(first)
    await repository.create(first, record)

    backend.clock.advance(timedelta(hours=24, minutes=1))

    assert await repository.get_idempotency_record(record.key) is None
    second = make_user()
    renewed = make_record(second, key=record.key, fingerprint="fp-2")
    await repository.create(second, renewed)
    assert await repository.get_idempotency_record(record.key) == renewed


# -- password hashes ----------------------------------------------------------------------------


async def test_replace_password_hash_is_conditional(repository: UserRepository) -> None:
    user = make_user()
    await repository.create(user)

    await repository.replace_password_hash(user, "$argon2id$rehashed")

    stored = await repository.get(user.user_id)
    assert stored == replace(user, password_hash="$argon2id$rehashed")
    assert stored is not None and stored.version == user.version
    with pytest.raises(EtagMismatch):
        await repository.replace_password_hash(user, "$argon2id$stale")
    assert await repository.get(user.user_id) == stored


async def test_update_keeps_a_concurrent_rehash(repository: UserRepository) -> None:
    user = make_user()
    await repository.create(user)
    await repository.replace_password_hash(user, "$argon2id$rehashed")

    await repository.update(user, replace(user, display_name="Renamed", version=2))

    stored = await repository.get(user.user_id)
    assert stored is not None
    assert stored.display_name == "Renamed" and stored.password_hash == "$argon2id$rehashed"


# -- listing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [None, UserState.DISABLED])
async def test_paging_returns_every_account_exactly_once(
    population: Population, state: UserState | None
) -> None:
    repository = population.backend.repository
    expected = {u.user_id: u for u in population.users if state is None or u.state is state}
    seen: list[str] = []
    cursor: dict[str, object] | None = None
    page_sizes: list[int] = []
    for _ in range(200):
        page = await repository.list_page(state=state, limit=37, cursor=cursor)
        page_sizes.append(len(page.users))
        for user in page.users:
            assert state is None or user.state is state
            assert user == expected[user.user_id]
            seen.append(user.user_id)
        cursor = page.next_cursor
        if cursor is None:
            break
    else:
        pytest.fail("paging did not end")

    assert len(seen) == len(set(seen)), "an account was returned twice"
    assert set(seen) == set(expected)
    assert all(size == 37 for size in page_sizes[:-1])
    assert page_sizes[-1] <= 37


async def test_listing_an_empty_store_gives_one_empty_page(repository: UserRepository) -> None:
    page = await repository.list_page(state=None, limit=10, cursor=None)
    assert page.users == [] and page.next_cursor is None


async def test_listing_sees_changes(repository: UserRepository) -> None:
    user = make_user()
    await repository.create(user)
    disabled = replace(user, state=UserState.DISABLED, version=2)
    await repository.update(user, disabled)

    active = await repository.list_page(state=UserState.ACTIVE, limit=10, cursor=None)
    listed = await repository.list_page(state=UserState.DISABLED, limit=10, cursor=None)

    assert active.users == []
    assert listed.users == [disabled]


@pytest.mark.parametrize(
    "cursor",
    [{}, {"unknown": 1}, {"shard": "zero"}, {"shard": -1}, {"shard": 10**6}, {"shard": None}],
)
async def test_a_malformed_cursor_is_an_invalid_page_token(
    repository: UserRepository, cursor: dict[str, object]
) -> None:
    with pytest.raises(InvalidPageToken):
        await repository.list_page(state=None, limit=10, cursor=cursor)
