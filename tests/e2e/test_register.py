"""Register: uniqueness by normalised username and e-mail, idempotency, and what is stored."""

from __future__ import annotations

import asyncio

import grpc

from tests.e2e.harness import Api, RunningServer, expect_error, scan_table, unique
from usermgmt.v1 import user_pb2, user_service_pb2


async def test_register_returns_the_public_user(api: Api) -> None:
    username = unique()
    response = await api.register(username, email=f"{username}@Example.com", display_name="Ann")
    user = response.user
    assert user.user_id and user.username == username
    assert user.email == f"{username}@Example.com"
    assert user.display_name == "Ann"
    assert user.state == user_pb2.USER_STATE_ACTIVE
    assert not user.email_verified
    assert list(user.roles) == []
    assert user.create_time.seconds > 0 and user.update_time == user.create_time
    assert user.etag
    assert "password" not in str(response) and "argon2" not in str(response)


async def test_username_is_unique_ignoring_case_and_width(api: Api) -> None:
    username = unique("Mixed")
    await api.register(username)
    upper = await expect_error(api.register(username.upper(), email=f"x{username}@example.com"))
    assert (upper.code, upper.reason) == (grpc.StatusCode.ALREADY_EXISTS, "USERNAME_TAKEN")
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in username)
    width = await expect_error(api.register(full_width, email=f"y{username}@example.com"))
    assert (width.code, width.reason) == (grpc.StatusCode.ALREADY_EXISTS, "USERNAME_TAKEN")


async def test_email_is_unique_ignoring_case(api: Api) -> None:
    username = unique()
    await api.register(username, email=f"{username}@example.com")
    taken = await expect_error(api.register(unique(), email=f"{username.upper()}@EXAMPLE.COM"))
    assert (taken.code, taken.reason) == (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")
    assert taken.domain == "usermgmt"


async def test_fifty_concurrent_registrations_of_one_email_create_one_user(
    api: Api, server: RunningServer, moto_endpoint: str
) -> None:
    email = f"{unique('race')}@example.com"
    results = await asyncio.gather(
        *(api.register(unique(), email=email) for _ in range(50)), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, user_service_pb2.RegisterResponse)]
    failures = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(created) == 1
    assert len(failures) == 49
    assert {f.code() for f in failures} == {grpc.StatusCode.ALREADY_EXISTS}

    items = await scan_table(moto_endpoint, server.settings.table_name)
    users = {item["user_id"] for item in items if str(item["pk"]).startswith("USER#")}
    guards = [item for item in items if str(item["sk"]) == "GUARD"]
    assert all(guard["user_id"] in users for guard in guards), "no orphan guard items"
    email_guards = [g for g in guards if str(g["pk"]) == f"EMAIL#{email}"]
    assert [g["user_id"] for g in email_guards] == [created[0].user.user_id]


async def test_replayed_request_id_returns_the_first_user(api: Api) -> None:
    username, request_id = unique(), unique("req")
    first = await api.register(username, request_id=request_id)
    second = await api.register(username, request_id=request_id)
    assert second.user == first.user
    other = await expect_error(api.register(unique(), request_id=request_id))
    assert other.code == grpc.StatusCode.INVALID_ARGUMENT
    assert other.reason == "REQUEST_ID_REUSED"
    assert "request_id" in other.violations


async def test_concurrent_replays_of_one_request_id_create_one_user(api: Api) -> None:
    username, request_id = unique(), unique("req")
    results = await asyncio.gather(
        *(api.register(username, request_id=request_id) for _ in range(10))
    )
    assert len({result.user.user_id for result in results}) == 1


async def test_same_request_id_with_another_password_is_rejected(api: Api) -> None:
    username, request_id = unique(), unique("req")
    await api.register(username, request_id=request_id)
    error = await expect_error(
        api.register(username, request_id=request_id, password="another password entirely")
    )
    assert error.reason == "REQUEST_ID_REUSED"


async def test_stored_items_hold_no_plain_password(
    api: Api, server: RunningServer, moto_endpoint: str
) -> None:
    password = "plain-text-canary-9d1f"
    await api.register(password=password)
    items = await scan_table(moto_endpoint, server.settings.table_name)
    assert password not in repr(items)
    hashes = [str(item["password_hash"]) for item in items if "password_hash" in item]
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
