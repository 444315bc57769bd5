"""Publishes code notifications to the SNS topic the notifier listens on."""

from __future__ import annotations

import json
from typing import Any

from usermgmt_server.adapters.dynamodb.errors import translate_storage_errors
from usermgmt_server.adapters.notifications.messages import SCHEMA_VERSION, code_notification
from usermgmt_server.domain.model import OneTimeCode, User
from usermgmt_server.domain.ports import Clock


class SnsCodeNotifier:
    """``Notifier`` that publishes one CloudEvents message per code to an SNS topic, with the
    message attributes subscribers filter on (event_type, event_id, schema_version)."""

    def __init__(self, sns_client: Any, topic_arn: str, clock: Clock) -> None:
        self._sns = sns_client
        self._topic_arn = topic_arn
        self._clock = clock

    async def send_code(self, user: User, code: OneTimeCode, plain_code: str) -> None:
        """Publish the notification; raises ``StorageUnavailable`` when SNS is unreachable."""
        event = code_notification(user, code, plain_code, self._clock.now())
        async with translate_storage_errors("publish notification"):
            await self._sns.publish(
                TopicArn=self._topic_arn,
                Message=json.dumps(event),
                MessageAttributes={
                    "event_type": {"DataType": "String", "StringValue": event["type"]},
                    "event_id": {"DataType": "String", "StringValue": event["id"]},
                    "schema_version": {"DataType": "String", "StringValue": SCHEMA_VERSION},
                },
            )
