"""Fixtures of the storage contract suite: one ``backend`` per storage implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from usermgmt_server.adapters.dynamodb.clients import AwsClients, AwsSettings, open_aws_clients
from usermgmt_server.adapters.dynamodb.resources import create_resources
from usermgmt_server.domain.ports import UserRepository

from tests.storage.backends import DynamoBackend, StorageBackend
from tests.storage.factories import FakeClock

BACKENDS = ["dynamodb"]


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
    assert request.param == "dynamodb"
    await create_resources(aws_clients, table_name, "usermgmt-storage-tests")
    yield DynamoBackend(aws_clients.dynamodb, table_name, FakeClock())
    await aws_clients.dynamodb.delete_table(TableName=table_name)


@pytest.fixture
def repository(backend: StorageBackend) -> UserRepository:
    """The repository under test."""
    return backend.repository
