"""Shared fixtures: one moto server over HTTP for the whole session, fake AWS credentials."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from usermgmt_server.embedded import EmulatorServer

AWS_REGION = "us-east-1"


@pytest.fixture(scope="session", autouse=True)
def aws_environment() -> Iterator[None]:
    """Fake credentials so no test can reach a real AWS account."""
    saved = {key: os.environ.get(key) for key in _AWS_ENV}
    os.environ.update(_AWS_ENV)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": AWS_REGION,
    "AWS_REGION": AWS_REGION,
}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto server (DynamoDB, SNS, ...) listening on loopback for this test session.

    It is the embedded mode's emulator: moto over HTTP, with DynamoDB requests serialised so
    conditional writes are atomic as in the real service.
    """
    server = EmulatorServer()
    server.start()
    yield server.endpoint
    server.stop()


@pytest.fixture
def table_name() -> str:
    """A table name no other test uses, so tests never see each other's data."""
    return f"usermgmt-test-{uuid.uuid4().hex[:12]}"
