"""Long-lived aiobotocore clients for DynamoDB and SNS (and, for the notifier, SQS and SES),
one of each per process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig

# SQS long polls hold a ReceiveMessage call open for up to 20 seconds.
SQS_MAX_WAIT_SECONDS = 20


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """How to reach AWS (or an emulator such as moto).

    ``endpoint_url`` overrides the service endpoints (``None`` = the region's real ones);
    ``max_attempts`` counts the first try, so 1 disables the SDK's retries; ``credentials``
    (``aws_access_key_id``/``aws_secret_access_key``) override the standard credential chain.
    """

    region: str
    endpoint_url: str | None = None
    max_attempts: int = 3
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    max_pool_connections: int = 64
    credentials: Mapping[str, str] | None = field(default=None, repr=False)

    def client_config(self) -> AioConfig:
        """The botocore configuration shared by every client."""
        return AioConfig(
            region_name=self.region,
            retries={"mode": "standard", "max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=self.max_pool_connections,
            tcp_keepalive=True,
        )


@dataclass(frozen=True, slots=True)
class AwsClients:
    """The open clients; valid until the ``open_aws_clients`` block ends.

    ``sqs`` and ``sesv2`` are ``None`` unless the clients were opened with ``messaging=True``.
    """

    dynamodb: Any
    sns: Any
    sqs: Any = None
    sesv2: Any = None


@asynccontextmanager
async def open_aws_clients(
    settings: AwsSettings, *, messaging: bool = False
) -> AsyncIterator[AwsClients]:
    """Create the DynamoDB and SNS clients from one session; close them on exit.

    ``messaging=True`` also opens SQS and SES (v2) clients, for the notifier. The SQS client's
    read timeout is extended by the longest long poll so that waiting is not a timeout.
    """
    session = aioboto3.Session(region_name=settings.region, **dict(settings.credentials or {}))
    config = settings.client_config()
    async with AsyncExitStack() as stack:
        dynamodb = await stack.enter_async_context(
            session.client("dynamodb", endpoint_url=settings.endpoint_url, config=config)
        )
        sns = await stack.enter_async_context(
            session.client("sns", endpoint_url=settings.endpoint_url, config=config)
        )
        sqs = sesv2 = None
        if messaging:
            sqs_config = config.merge(
                AioConfig(read_timeout=settings.read_timeout + SQS_MAX_WAIT_SECONDS)
            )
            sqs = await stack.enter_async_context(
                session.client("sqs", endpoint_url=settings.endpoint_url, config=sqs_config)
            )
            sesv2 = await stack.enter_async_context(
                session.client("sesv2", endpoint_url=settings.endpoint_url, config=config)
            )
        yield AwsClients(dynamodb=dynamodb, sns=sns, sqs=sqs, sesv2=sesv2)


__all__ = ["AwsClients", "AwsSettings", "open_aws_clients"]
