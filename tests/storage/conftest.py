"""Fixtures of the storage contract suite: one ``backend`` per storage implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.storage.backends import BACKENDS, Population, StorageBackend, open_backend
from tests.storage.factories import make_user, unique
from usermgmt_server.adapters.dynamodb.clients import AwsClients, AwsSettings, open_aws_clients
from usermgmt_server.domain.model import UserState
from usermgmt_server.domain.ports import (
    CodeStore,
    LeaseStore,
    LoginFailureStore,
    Outbox,
    RefreshTokenStore,
    UserRepository,
)


@pytest.fixture(scope="session")
async def aws_clients(moto_endpoint: str) -> AsyncIterator[AwsClients]:
    """Long-lived clients of the session's moto server, shared as the service shares them."""
    settings = AwsSettings(region="us-east-1", endpoint_url=moto_endpoint)
    async with open_aws_clients(settings) as clients:
        yield clients


@pytest.fixture(params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, aws_clients: AwsClients, table_name: str
) -> AsyncIterator[StorageBackend]:
    """An empty store of the parametrised kind, with a fake clock."""
    async with open_backend(request.param, aws_clients, table_name) as opened:
        yield opened


@pytest.fixture
def repository(backend: StorageBackend) -> UserRepository:
    """The repository under test."""
    return backend.repository


@pytest.fixture
def codes(backend: StorageBackend) -> CodeStore:
    """The one-time code store under test."""
    return backend.codes


@pytest.fixture
def refresh_tokens(backend: StorageBackend) -> RefreshTokenStore:
    """The refresh-token store under test."""
    return backend.refresh_tokens


@pytest.fixture
def failures(backend: StorageBackend) -> LoginFailureStore:
    """The login-failure store under test."""
    return backend.failures


@pytest.fixture
def outbox(backend: StorageBackend) -> Outbox:
    """The outbox under test."""
    return backend.outbox


@pytest.fixture
def leases(backend: StorageBackend) -> LeaseStore:
    """The lease store under test."""
    return backend.leases


@pytest.fixture(scope="module", params=BACKENDS)
async def population(
    request: pytest.FixtureRequest, aws_clients: AwsClients
) -> AsyncIterator[Population]:
    """1,000 accounts in a mix of states, written in bulk once per test module and backend."""
    states = list(UserState)
    users = [make_user(state=states[index % len(states)]) for index in range(1000)]
    async with open_backend(request.param, aws_clients, unique("usermgmt-population")) as opened:
        await opened.seed(users)
        yield Population(opened, users)
