"""Fixtures of the notifier tests: messaging clients of the session's moto server, a table for
the delivery markers, and a fresh topic, pipeline and worker factory per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.notifier.support import FROM_ADDRESS, ISSUED_AT, WorkerFactory
from usermgmt_server.adapters.dynamodb.clients import AwsClients, AwsSettings, open_aws_clients
from usermgmt_server.adapters.dynamodb.resources import create_resources
from usermgmt_server.adapters.events.publisher import SnsEventPublisher
from usermgmt_server.adapters.security.sealing import AesGcmSealer
from usermgmt_server.adapters.security.system import ManualClock
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.notifier.resources import (
    PipelineInfo,
    ensure_email_identity,
    ensure_notification_pipeline,
)


@pytest.fixture(scope="session")
async def messaging(moto_endpoint: str) -> AsyncIterator[AwsClients]:
    """DynamoDB, SNS, SQS and SES clients of the session's moto server."""
    settings = AwsSettings(region="us-east-1", endpoint_url=moto_endpoint)
    async with open_aws_clients(settings, messaging=True) as clients:
        yield clients


@pytest.fixture(scope="session")
async def marker_table(messaging: AwsClients) -> str:
    """The service's table (markers live in it); event ids keep tests apart."""
    name = f"usermgmt-notifier-{uuid.uuid4().hex[:8]}"
    await create_resources(messaging, name, name)
    await ensure_email_identity(messaging.sesv2, FROM_ADDRESS)
    return name


@pytest.fixture
async def topic_arn(messaging: AwsClients) -> str:
    """A topic of this test only."""
    response = await messaging.sns.create_topic(Name=f"events-{uuid.uuid4().hex[:12]}")
    return str(response["TopicArn"])


@pytest.fixture
async def pipeline(messaging: AwsClients, topic_arn: str) -> PipelineInfo:
    """Queue and DLQ subscribed to this test's topic; 1 s visibility, DLQ after 2 receives."""
    return await ensure_notification_pipeline(
        messaging,
        topic_arn,
        f"notify-{uuid.uuid4().hex[:12]}",
        max_receive_count=2,
        visibility_timeout=1,
    )


@pytest.fixture
def publish(messaging: AwsClients, topic_arn: str) -> Callable[[DomainEvent], Any]:
    """Publish an event to this test's topic exactly as the service does."""
    publisher = SnsEventPublisher(messaging.sns, topic_arn, AesGcmSealer(os.urandom(32)))

    async def publish_one(event: DomainEvent) -> None:
        assert await publisher.publish([event]) == {}

    return publish_one


@pytest.fixture
def clock() -> ManualClock:
    """Shortly after the test events were issued: their codes are still valid."""
    return ManualClock(ISSUED_AT + timedelta(minutes=1))


@pytest.fixture
def make_worker(
    messaging: AwsClients, pipeline: PipelineInfo, marker_table: str, clock: ManualClock
) -> WorkerFactory:
    """Workers on this test's queue with a 1 s visibility timeout and no long poll."""
    return WorkerFactory(messaging, pipeline, marker_table, clock)
