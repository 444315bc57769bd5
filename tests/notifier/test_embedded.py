"""The in-process notifier of embedded mode: real (emulated) delivery, echoed to the console."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from datetime import UTC, datetime

from tests.notifier.support import notification, sent_emails
from usermgmt_server.adapters.dynamodb.clients import AwsClients
from usermgmt_server.domain.events import NOTIFY_VERIFICATION_CODE, NOTIFY_WELCOME
from usermgmt_server.notifier.embedded import run_embedded_notifier


async def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_the_embedded_notifier_sends_and_echoes_until_stopped(
    messaging: AwsClients, marker_table: str, topic_arn: str, publish
) -> None:
    echo, stop = io.StringIO(), asyncio.Event()
    task = asyncio.create_task(
        run_embedded_notifier(
            messaging,
            marker_table,
            topic_arn,
            "usermgmt <no-reply@embedded.test>",
            stop,
            echo,
            queue_name=f"embedded-{uuid.uuid4().hex[:12]}",
        )
    )
    mail = notification(NOTIFY_VERIFICATION_CODE, code="135790", issued_at=datetime.now(UTC))
    sms = notification(NOTIFY_WELCOME, channel="sms")

    async def subscribed() -> bool:
        listed = await messaging.sns.list_subscriptions_by_topic(TopicArn=topic_arn)
        return bool(listed["Subscriptions"])

    async def echoed_both() -> bool:
        return "[embedded sms]" in echo.getvalue() and "[embedded mail]" in echo.getvalue()

    try:
        await wait_for(subscribed)
        await publish(mail)
        await publish(sms)
        await wait_for(echoed_both)
    finally:
        stop.set()
        # Stopping drops the pending 20 s long poll.
        await asyncio.wait_for(task, timeout=3)

    printed = echo.getvalue()
    recipient = mail.data["recipient"]
    assert f"[embedded mail] to {recipient}: Your usermgmt verification code\n" in printed
    assert "135790" in printed
    assert f"[embedded sms] to {sms.data['recipient']}: Welcome to usermgmt" in printed
    [sent] = sent_emails(str(recipient))
    assert sent["source"] == "usermgmt <no-reply@embedded.test>"
