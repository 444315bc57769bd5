"""Publishes domain events to the SNS topic, up to ten with one ``PublishBatch`` call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from usermgmt_server.adapters.dynamodb.errors import translate_storage_errors
from usermgmt_server.adapters.events.cloudevents import message_attributes, message_body, opened
from usermgmt_server.adapters.events.delivery import PUBLISH_BATCH_LIMIT
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.ports import CodeSealer

# An entry SNS answers neither as published nor as failed is taken as not published.
NO_ANSWER = "NoAnswer"


class SnsEventPublisher:
    """Sends events to one topic (``Publisher``); raises ``StorageUnavailable`` when SNS cannot
    be reached.

    A batch may carry 256 KiB in all; an event is at most a few KiB (names, address and roles
    are bounded), so ten of them always fit.
    """

    def __init__(self, sns_client: Any, topic_arn: str, sealer: CodeSealer) -> None:
        self._sns = sns_client
        self._topic_arn = topic_arn
        self._sealer = sealer

    async def publish(self, events: Sequence[DomainEvent]) -> dict[str, str]:
        """Publish ``events`` (at most ``PUBLISH_BATCH_LIMIT``), codes opened; the ones SNS
        did not take, as event id -> SNS error code. At least once: a retry may publish an
        event again, same id."""
        if len(events) > PUBLISH_BATCH_LIMIT:
            raise ValueError(f"at most {PUBLISH_BATCH_LIMIT} events per batch")
        if not events:
            return {}
        # Entry ids only need to be unique within the call: the position will do.
        entries = [
            {
                "Id": str(index),
                "Message": message_body(opened(event, self._sealer)),
                "MessageAttributes": message_attributes(event),
            }
            for index, event in enumerate(events)
        ]
        async with translate_storage_errors("publish events"):
            response = await self._sns.publish_batch(
                TopicArn=self._topic_arn, PublishBatchRequestEntries=entries
            )
        taken = {str(entry["Id"]) for entry in response.get("Successful", [])}
        codes = {str(entry["Id"]): str(entry["Code"]) for entry in response.get("Failed", [])}
        return {
            event.event_id: codes.get(str(index), NO_ANSWER)
            for index, event in enumerate(events)
            if str(index) not in taken
        }
