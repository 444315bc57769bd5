"""The outbox under failure: events committed while SNS cannot be reached, or by a process killed
before it could publish, are published later by the sweeper, none lost, codes mailed once."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from tests.e2e.harness import (
    ADMIN_PASSWORD,
    Api,
    Message,
    SubscribedQueue,
    TcpProxy,
    cloudevents,
    create_table,
    drop_queue,
    emails_to,
    mentions_code,
    messaging_clients,
    notification_ids,
    notifier_under_test,
    outbox_items,
    receive_until,
    running_server,
    sent_emails,
    server_environment,
    subscribe_queue,
    unique,
    wait_for,
)
from tests.e2e.processes import clean_environment, server_process

USERS = 20
REGISTERED = "usermgmt.user.registered.v1"
VERIFICATION = "usermgmt.notification.verification_code.v1"
# Publishing fails at once while the proxy refuses connections; the sweeper retries often.
UNREACHABLE_SNS = {
    "USERMGMT_AWS_MAX_ATTEMPTS": "1",
    "USERMGMT_AWS_CONNECT_TIMEOUT": "0.5",
    "USERMGMT_OUTBOX_SWEEP_INTERVAL": "0.5",
    "USERMGMT_OUTBOX_GRACE": "0",
    "USERMGMT_REQUIRE_EMAIL_VERIFICATION": "true",
}


@pytest.fixture
async def sns_proxy(moto_endpoint: str) -> AsyncIterator[TcpProxy]:
    """A proxy to the moto server for SNS traffic, stopped (connections refused) at first."""
    proxy = TcpProxy(moto_endpoint)
    try:
        yield proxy
    finally:
        await proxy.stop()


@pytest.fixture
async def everything(moto_endpoint: str) -> AsyncIterator[tuple[Any, SubscribedQueue]]:
    """(sqs client, queue) receiving every event published to the topic."""
    async with messaging_clients(moto_endpoint) as (sqs, sns):
        queue = await subscribe_queue(sqs, sns, f"outbox-all-{uuid.uuid4().hex[:10]}")
        try:
            yield sqs, queue
        finally:
            await drop_queue(sqs, sns, queue)


def event_ids(messages: list[Message]) -> set[str]:
    return {event["id"] for event in cloudevents(messages)}


async def test_events_written_while_sns_is_unreachable_are_swept_once_it_is_back(
    moto_endpoint: str, sns_proxy: TcpProxy, everything: tuple[Any, SubscribedQueue]
) -> None:
    sqs, queue = everything
    table = f"usermgmt-e2e-{uuid.uuid4().hex[:12]}"
    async with (
        running_server(
            moto_endpoint, table, USERMGMT_SNS_ENDPOINT_URL=sns_proxy.url, **UNREACHABLE_SNS
        ) as server,
        notifier_under_test(moto_endpoint, table) as notifier,
        server.channel() as channel,
    ):
        api = Api(channel)
        users = await asyncio.gather(*(api.register(unique("outage")) for _ in range(USERS)))
        ids = {registered.user.user_id for registered in users}
        assert len(ids) == USERS

        pending = await outbox_items(moto_endpoint, table)
        assert len(pending) >= 2 * USERS
        mine = [item for item in pending if item["subject"] in ids]
        assert Counter(item["type"] for item in mine) == {REGISTERED: USERS, VERIFICATION: USERS}
        written = {str(item["event_id"]) for item in pending}
        # Codes wait in the outbox sealed, never in clear.
        for item in mine:
            if item["type"] == VERIFICATION:
                code = server.notifier.last_code(str(item["subject"]))
                data = json.loads(str(item["data"]))
                assert "code" not in data and code not in data.values()
        assert sns_proxy.connections == 0

        await sns_proxy.start()

        async def outbox_empty() -> bool:
            return not await outbox_items(moto_endpoint, table)

        assert await wait_for(outbox_empty, within=30), "the sweeper did not empty the outbox"
        received = await receive_until(
            sqs, queue.url, lambda got: written <= event_ids(got), within=20
        )
        missing = written - event_ids(received)
        assert not missing, f"{len(missing)} events never reached the topic"

        sent = [
            event_id
            for registered in users
            for event_id in notification_ids(server.notifier, registered.user.user_id, VERIFICATION)
        ]
        assert len(sent) == USERS
        assert await notifier.deliver_until_sent(sent, within=30)
        await notifier.deliver_all()
        mails = sent_emails()
        for registered in users:
            (mail,) = emails_to(mails, registered.user.email)
            code = server.notifier.last_code(registered.user.user_id)
            assert code in str(mail["body"])


@pytest.mark.parametrize("sns", ["refusing", "hanging"])
async def test_events_of_a_process_killed_before_publishing_are_swept_by_the_next(
    moto_endpoint: str, sns_proxy: TcpProxy, everything: tuple[Any, SubscribedQueue], sns: str
) -> None:
    """``refusing``: SNS cannot be reached, the publication failed before the kill;
    ``hanging``: SNS accepts the connection but never answers, so the process dies with its
    publication in flight, after the commit and before SNS took the event."""
    sqs, queue = everything
    table = f"usermgmt-e2e-{uuid.uuid4().hex[:12]}"
    await create_table(moto_endpoint, table)
    env = clean_environment(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        **server_environment(
            moto_endpoint,
            table,
            USERMGMT_SNS_ENDPOINT_URL=sns_proxy.url,
            USERMGMT_LOG_LEVEL="DEBUG",
            **UNREACHABLE_SNS,
        ),
    )
    if sns == "hanging":
        await sns_proxy.start(hold=True)
    async with server_process(env=env) as first:
        async with grpc.aio.insecure_channel(first.address) as channel:
            user = (await Api(channel).register(unique("killed"))).user
        if sns == "hanging":

            async def publishing() -> bool:
                return sns_proxy.connections > 0

            assert await wait_for(publishing, within=10, every=0.05)
        first.process.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(first.process.wait(), 10) == -signal.SIGKILL
    await sns_proxy.stop()

    pending = await outbox_items(moto_endpoint, table)
    mine = {
        str(item["event_id"]): item["type"] for item in pending if item["subject"] == user.user_id
    }
    assert sorted(mine.values()) == sorted([REGISTERED, VERIFICATION])
    if sns == "refusing":
        assert sns_proxy.connections == 0

    await sns_proxy.start()
    async with server_process(env=env) as second:

        async def outbox_empty() -> bool:
            return not await outbox_items(moto_endpoint, table)

        assert await wait_for(outbox_empty, within=20), "the new process did not sweep"
        assert second.process.returncode is None
        second.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.process.wait(), 20) == 0
    received = await receive_until(
        sqs, queue.url, lambda got: set(mine) <= event_ids(got), within=20
    )
    assert set(mine) <= event_ids(received)
    published = {e["id"]: e for e in cloudevents(received) if e["id"] in mine}
    assert {e["type"] for e in published.values()} == {REGISTERED, VERIFICATION}
    assert {e["subject"] for e in published.values()} == {user.user_id}
    # Neither process logged a secret while publishing, failing or sweeping.
    (code,) = [e["data"]["code"] for e in published.values() if e["type"] == VERIFICATION]
    logs = "".join(first.stderr + second.stderr)
    assert first.stderr and second.stderr
    for secret in ("$argon2", ADMIN_PASSWORD, env["USERMGMT_HMAC_SECRET"]):
        assert secret not in logs
    assert not mentions_code(logs, code)
