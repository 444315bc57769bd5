"""Publishes one domain event to the SNS topic."""

from __future__ import annotations

from typing import Any

from usermgmt_server.adapters.dynamodb.errors import translate_storage_errors
from usermgmt_server.adapters.events.cloudevents import message_attributes, message_body, opened
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.ports import CodeSealer


class SnsEventPublisher:
    """Sends events to one topic; raises ``StorageUnavailable`` when SNS cannot be reached."""

    def __init__(self, sns_client: Any, topic_arn: str, sealer: CodeSealer) -> None:
        self._sns = sns_client
        self._topic_arn = topic_arn
        self._sealer = sealer

    async def publish(self, event: DomainEvent) -> None:
        """Publish ``event``, its code opened (at least once: a retry may publish it again,
        same id)."""
        event = opened(event, self._sealer)
        async with translate_storage_errors("publish event"):
            await self._sns.publish(
                TopicArn=self._topic_arn,
                Message=message_body(event),
                MessageAttributes=message_attributes(event),
            )
