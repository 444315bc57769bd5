"""Publishes one domain event to the SNS topic."""

from __future__ import annotations

from typing import Any

from usermgmt_server.adapters.dynamodb.errors import translate_storage_errors
from usermgmt_server.adapters.events.cloudevents import message_attributes, message_body
from usermgmt_server.domain.events import DomainEvent


class SnsEventPublisher:
    """Sends events to one topic; raises ``StorageUnavailable`` when SNS cannot be reached."""

    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        self._sns = sns_client
        self._topic_arn = topic_arn

    async def publish(self, event: DomainEvent) -> None:
        """Publish ``event`` (at least once: a retry may publish it again, same id)."""
        async with translate_storage_errors("publish event"):
            await self._sns.publish(
                TopicArn=self._topic_arn,
                Message=message_body(event),
                MessageAttributes=message_attributes(event),
            )
