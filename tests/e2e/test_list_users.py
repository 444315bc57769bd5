"""ListUsers: complete paging over many users, signed tokens bound to the filter, filters."""

from __future__ import annotations

import base64

import grpc
import pytest

from tests.e2e.harness import (
    Api,
    RunningServer,
    bearer,
    expect_error,
    running_server,
    seed_users,
    unique,
)
from usermgmt.v1 import user_pb2, user_service_pb2

CROWD = [f"crowd-{index:04d}" for index in range(1000)]


@pytest.fixture(scope="module")
async def crowded(moto_endpoint: str) -> RunningServer:  # type: ignore[misc]
    """A server whose table holds 1,000 accounts (every third disabled) plus the administrator."""
    async with running_server(moto_endpoint) as server:
        await seed_users(moto_endpoint, server.settings.table_name, CROWD, disabled_every=3)
        yield server


async def _list(api: Api, token: str, **fields: object) -> user_service_pb2.ListUsersResponse:
    return await api.users.ListUsers(
        user_service_pb2.ListUsersRequest(**fields), metadata=bearer(token)
    )


async def test_pages_of_37_return_every_user_once(crowded: RunningServer) -> None:
    async with crowded.channel() as channel:
        api = Api(channel)
        token = await api.admin_token()
        seen: list[str] = []
        page_token = ""
        pages = 0
        while True:
            page = await _list(api, token, page_size=37, page_token=page_token)
            assert len(page.users) <= 37
            seen += [user.username for user in page.users]
            pages += 1
            page_token = page.next_page_token
            if not page_token:
                break
        crowd = sorted(name for name in seen if name.startswith("crowd-"))
        assert crowd == CROWD
        assert len(seen) == len(set(seen)) == 1001
        assert pages >= 1001 // 37


async def test_state_filter_pages_return_exactly_the_matching_users(
    crowded: RunningServer,
) -> None:
    async with crowded.channel() as channel:
        api = Api(channel)
        token = await api.admin_token()
        for state, expected in (
            ("USER_STATE_DISABLED", CROWD[::3]),
            ("USER_STATE_ACTIVE", [n for i, n in enumerate(CROWD) if i % 3]),
        ):
            seen: list[str] = []
            page_token = ""
            while True:
                page = await _list(
                    api, token, page_size=37, page_token=page_token, filter=f"state = {state}"
                )
                assert len(page.users) <= 37
                seen += [user.username for user in page.users]
                page_token = page.next_page_token
                if not page_token:
                    break
            crowd = [name for name in seen if name.startswith("crowd-")]
            assert sorted(crowd) == sorted(expected)
            assert len(crowd) == len(set(crowd))


async def test_seeded_users_sign_in(crowded: RunningServer) -> None:
    async with crowded.channel() as channel:
        assert await Api(channel).login("crowd-0001")


async def test_default_and_maximum_page_sizes(crowded: RunningServer) -> None:
    async with crowded.channel() as channel:
        api = Api(channel)
        token = await api.admin_token()
        assert len((await _list(api, token)).users) == 50
        assert len((await _list(api, token, page_size=500)).users) == 500
        for bad in (-1, 501):
            error = await expect_error(_list(api, token, page_size=bad))
            assert error.code == grpc.StatusCode.INVALID_ARGUMENT
            assert "page_size" in error.violations


async def test_tampered_or_rebound_page_tokens_are_rejected(crowded: RunningServer) -> None:
    async with crowded.channel() as channel:
        api = Api(channel)
        token = await api.admin_token()
        first = await _list(api, token, page_size=10)
        page_token = first.next_page_token
        assert page_token and all(c.isalnum() or c in "-_" for c in page_token)
        raw = bytearray(base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)))
        for position in (0, len(raw) // 2, len(raw) - 1):
            flipped = bytearray(raw)
            flipped[position] ^= 0x01
            forged = base64.urlsafe_b64encode(bytes(flipped)).decode().rstrip("=")
            error = await expect_error(_list(api, token, page_size=10, page_token=forged))
            assert error.code == grpc.StatusCode.INVALID_ARGUMENT
            assert "page_token" in error.violations
        rebound = await expect_error(
            _list(
                api, token, page_size=10, page_token=page_token, filter="state = USER_STATE_ACTIVE"
            )
        )
        assert "page_token" in rebound.violations
        garbage = await expect_error(_list(api, token, page_token="not a token!"))
        assert "page_token" in garbage.violations


async def test_filters(api: Api, admin_token: str) -> None:
    registered = await api.register(unique("Filter"))
    user = registered.user
    by_email = await _list(api, admin_token, filter=f'email = "{user.email.upper()}"')
    assert [u.user_id for u in by_email.users] == [user.user_id]
    by_name = await _list(
        api, admin_token, filter=f'username = "{user.username}" AND state = USER_STATE_ACTIVE'
    )
    assert [u.user_id for u in by_name.users] == [user.user_id]
    none = await _list(
        api, admin_token, filter=f'username = "{user.username}" AND state = USER_STATE_DISABLED'
    )
    assert list(none.users) == []
    active = await _list(api, admin_token, filter="state = USER_STATE_ACTIVE", page_size=500)
    assert all(u.state == user_pb2.USER_STATE_ACTIVE for u in active.users)
    for bad in ('nickname = "x"', "state = ACTIVE", "email = bob", "state = USER_STATE_ACTIVE OR"):
        error = await expect_error(_list(api, admin_token, filter=bad))
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "filter" in error.violations
