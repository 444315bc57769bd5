"""Fixtures for end-to-end tests: one real server per test module, a channel per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.harness import Api, RunningServer, running_server


@pytest.fixture(scope="module")
async def server(moto_endpoint: str) -> AsyncIterator[RunningServer]:
    """A production-mode server on its own table, shared by the tests of one module."""
    async with running_server(moto_endpoint) as started:
        yield started


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[Api]:
    """Stubs on a fresh channel to the module's server."""
    async with server.channel() as channel:
        yield Api(channel)


@pytest.fixture
async def admin_token(api: Api) -> str:
    """An access token of the bootstrap administrator."""
    return await api.admin_token()
