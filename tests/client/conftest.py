"""Fixtures for the client library and CLI tests: a real server per module, clients on real
channels to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.harness import ADMIN_PASSWORD, ADMIN_USERNAME, RunningServer, running_server
from usermgmt import UsermgmtClient


@pytest.fixture(scope="module")
async def server(moto_endpoint: str) -> AsyncIterator[RunningServer]:
    """A production-mode server on its own table, shared by the tests of one module."""
    async with running_server(moto_endpoint) as started:
        yield started


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[UsermgmtClient]:
    """A signed-out client of the module's server."""
    async with UsermgmtClient(server.address) as opened:
        yield opened


@pytest.fixture
async def admin(server: RunningServer) -> AsyncIterator[UsermgmtClient]:
    """A client signed in as the bootstrap administrator."""
    async with UsermgmtClient(server.address) as opened:
        await opened.auth.login(ADMIN_USERNAME, ADMIN_PASSWORD)
        yield opened
