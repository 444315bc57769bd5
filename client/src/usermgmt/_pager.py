"""Following ListUsers pages (AIP-158) as one async stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from usermgmt.v1 import user_pb2, user_service_pb2

FetchPage = Callable[[str], Awaitable[user_service_pb2.ListUsersResponse]]


class UserPager:
    """The users of a ListUsers query, fetched one page at a time as they are consumed.

    ``async for user in pager`` yields every user; ``async for page in pager.pages()`` yields
    each ``ListUsersResponse``. Nothing is fetched before iteration starts; each iteration
    starts again from ``page_token`` (the first page unless given). After a page has been
    fetched, ``next_page_token`` holds the token that resumes after it (``""`` at the end), so
    a consumer can stop and carry on later with ``list(..., page_token=pager.next_page_token)``.
    """

    def __init__(self, fetch: FetchPage, page_token: str = "") -> None:
        self._fetch = fetch
        self._start = page_token
        self.next_page_token = page_token

    async def pages(self) -> AsyncIterator[user_service_pb2.ListUsersResponse]:
        """Every page, in order."""
        token = self._start
        while True:
            page = await self._fetch(token)
            self.next_page_token = page.next_page_token
            yield page
            if not page.next_page_token:
                return
            token = page.next_page_token

    async def __aiter__(self) -> AsyncIterator[user_pb2.User]:
        async for page in self.pages():
            for user in page.users:
                yield user

    async def collect(self, limit: int | None = None) -> list[user_pb2.User]:
        """Every user (or the first ``limit``) as a list."""
        users: list[user_pb2.User] = []
        if limit is not None and limit <= 0:
            return users
        async for user in self:
            users.append(user)
            if limit is not None and len(users) >= limit:
                break
        return users
