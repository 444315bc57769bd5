"""The ListUsers pager follows every page of a large table, by user or by page, and resumes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.harness import ADMIN_USERNAME, RunningServer, running_server, seed_users, unique
from usermgmt import InvalidPageToken, UsermgmtClient, UserPager

SEEDED = 230
DISABLED_EVERY = 10


@pytest.fixture(scope="module")
async def server(moto_endpoint: str) -> AsyncIterator[RunningServer]:
    """A server whose table holds the bootstrap administrator and ``SEEDED`` accounts."""
    async with running_server(moto_endpoint) as started:
        names = [unique("paged") for _ in range(SEEDED)]
        await seed_users(
            moto_endpoint, started.settings.table_name, names, disabled_every=DISABLED_EVERY
        )
        yield started


async def test_iterating_users_follows_every_page(admin: UsermgmtClient) -> None:
    fetched: list[int] = []
    pager = admin.users.list(page_size=40)
    seen = []
    async for page in pager.pages():
        assert len(page.users) <= 40
        fetched.append(len(page.users))
        seen += [user.user_id for user in page.users]
    assert pager.next_page_token == ""
    assert len(seen) == SEEDED + 1 == len(set(seen))
    assert len(fetched) >= (SEEDED + 1) // 40

    users = [user async for user in admin.users.list(page_size=40)]
    assert sorted(user.user_id for user in users) == sorted(seen)
    assert ADMIN_USERNAME in {user.username for user in users}


async def test_filters_and_limits(admin: UsermgmtClient) -> None:
    disabled = await admin.users.list(filter="state = USER_STATE_DISABLED", page_size=7).collect()
    assert len(disabled) == len(range(0, SEEDED, DISABLED_EVERY))
    assert all(user.state == 3 for user in disabled)
    assert len(await admin.users.list(page_size=3).collect(limit=7)) == 7
    assert await admin.users.list().collect(limit=0) == []


async def test_a_pager_resumes_from_its_next_page_token(admin: UsermgmtClient) -> None:
    pager: UserPager = admin.users.list(page_size=50)
    first: list[str] = []
    async for page in pager.pages():
        first += [user.user_id for user in page.users]
        if len(first) >= 100:
            break
    assert pager.next_page_token
    rest = await admin.users.list(page_size=50, page_token=pager.next_page_token).collect()
    ids = first + [user.user_id for user in rest]
    assert len(ids) == len(set(ids)) == SEEDED + 1


async def test_a_page_token_is_bound_to_its_filter(admin: UsermgmtClient) -> None:
    pager = admin.users.list(page_size=5)
    async for _ in pager.pages():
        break
    with pytest.raises(InvalidPageToken):
        await admin.users.list(
            filter="state = USER_STATE_ACTIVE", page_token=pager.next_page_token
        ).collect()
