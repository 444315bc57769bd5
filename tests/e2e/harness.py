"""Start real usermgmt servers on ephemeral ports against the moto server, and talk to them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import ClassVar

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from usermgmt.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    user_service_pb2,
    user_service_pb2_grpc,
)
from usermgmt_server.adapters.dynamodb.clients import AwsSettings, open_aws_clients
from usermgmt_server.adapters.dynamodb.resources import create_resources
from usermgmt_server.app import Application
from usermgmt_server.config import Settings, load_settings

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:usermgmt-events"
ADMIN_USERNAME = "root-admin"
ADMIN_PASSWORD = "admin-password-for-tests"
# Cheap Argon2 parameters keep suites fast; tests about the parameters set their own.
FAST_ARGON2 = {"USERMGMT_ARGON2_TIME_COST": "1", "USERMGMT_ARGON2_MEMORY_KIB": "1024"}


def new_signing_key_pem() -> str:
    """A fresh P-256 private key in PEM, as an operator would provide it."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def server_environment(moto_endpoint: str, table_name: str, **overrides: str) -> dict[str, str]:
    """The environment of a production-mode server pointed at the moto server."""
    environ = {
        "USERMGMT_TABLE_NAME": table_name,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "USERMGMT_LISTEN_ADDRESS": "127.0.0.1:0",
        "USERMGMT_JWT_PRIVATE_KEY": new_signing_key_pem(),
        "USERMGMT_HMAC_SECRET": secrets.token_hex(32),
        "USERMGMT_DRAIN_SECONDS": "0",
        "USERMGMT_SHUTDOWN_GRACE": "1",
        "USERMGMT_HEALTH_INTERVAL": "0.2",
        "USERMGMT_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USERNAME,
        "USERMGMT_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # Suites about verification and rate limits turn these back on.
        "USERMGMT_REQUIRE_EMAIL_VERIFICATION": "false",
        "USERMGMT_TOPIC_ARN": TOPIC_ARN,
        "USERMGMT_RATE_LIMIT_PER_MINUTE": "0",
        **FAST_ARGON2,
    }
    environ.update(overrides)
    return {key: value for key, value in environ.items() if value != ""}


def moto_settings(moto_endpoint: str) -> AwsSettings:
    """How tests reach the moto server."""
    return AwsSettings(region="us-east-1", endpoint_url=moto_endpoint)


async def create_table(moto_endpoint: str, table_name: str) -> None:
    """Create the service's table and topic in the moto server."""
    async with open_aws_clients(moto_settings(moto_endpoint)) as clients:
        await create_resources(clients, table_name, "usermgmt-events")


@dataclass
class RunningServer:
    """A started server and what tests need to reach it."""

    application: Application
    settings: Settings
    address: str
    notifier: RecordingNotifier

    def channel(self) -> grpc.aio.Channel:
        """A new plaintext channel to the server."""
        return grpc.aio.insecure_channel(self.address)


class RecordingNotifier:
    """Sees every committed event and keeps the codes the server asked to send, so tests can
    read their "mailbox"."""

    _PURPOSES: ClassVar[dict[str, str]] = {
        "usermgmt.notification.verification_code.v1": "VERIFY_EMAIL",
        "usermgmt.notification.password_reset_code.v1": "RESET_PASSWORD",
    }

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, str]] = []  # (user_id, purpose, target, code)
        self.events: list[object] = []

    async def observe(self, event: object) -> None:
        self.events.append(event)
        purpose = self._PURPOSES.get(event.type)  # type: ignore[attr-defined]
        if purpose is not None:
            data = event.data  # type: ignore[attr-defined]
            self.sent.append((event.subject, purpose, data["recipient"], data["code"]))  # type: ignore[attr-defined]

    def last_code(self, user_id: str, purpose: str = "VERIFY_EMAIL") -> str:
        """The newest code sent to ``user_id`` for ``purpose``."""
        codes = [c for u, p, _, c in self.sent if u == user_id and p == purpose]
        assert codes, f"no {purpose} code was sent to {user_id}"
        return codes[-1]


@asynccontextmanager
async def running_server(
    moto_endpoint: str,
    table_name: str | None = None,
    *,
    create: bool = True,
    clock: object | None = None,
    notifier: RecordingNotifier | None = None,
    **overrides: str,
) -> AsyncIterator[RunningServer]:
    """Start a server (creating its table first) and stop it on exit.

    ``clock`` (e.g. a ManualClock) replaces the system clock; ``notifier`` records codes.
    """
    table_name = table_name or f"usermgmt-e2e-{uuid.uuid4().hex[:12]}"
    if create:
        await create_table(moto_endpoint, table_name)
    settings = load_settings(environ=server_environment(moto_endpoint, table_name, **overrides))
    notifier = notifier or RecordingNotifier()
    application = Application(settings, clock=clock, observer=notifier)  # type: ignore[arg-type]
    endpoint = await application.start()
    try:
        yield RunningServer(application, settings, f"127.0.0.1:{endpoint.port}", notifier)
    finally:
        await application.stop()


def unique(prefix: str = "user") -> str:
    """A username no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying an access token."""
    return (("authorization", f"Bearer {token}"),)


class Api:
    """Generated stubs on one channel plus the few steps most tests repeat."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.users = user_service_pb2_grpc.UserServiceStub(channel)
        self.auth = auth_service_pb2_grpc.AuthServiceStub(channel)

    async def register(
        self, username: str | None = None, *, password: str = "correct horse battery", **fields: str
    ) -> user_service_pb2.RegisterResponse:
        """Register a user (a fresh username and matching e-mail unless given)."""
        username = username or unique()
        fields.setdefault("email", f"{username}@example.com")
        request = user_service_pb2.RegisterRequest(username=username, password=password, **fields)
        return await self.users.Register(request)

    async def login(self, login: str, password: str = "correct horse battery") -> str:
        """Authenticate and return the access token."""
        response = await self.auth.Authenticate(
            auth_service_pb2.AuthenticateRequest(login=login, password=password)
        )
        return response.access_token

    async def admin_token(self) -> str:
        """An access token of the bootstrap administrator."""
        return await self.login(ADMIN_USERNAME, ADMIN_PASSWORD)

    async def new_user_with_token(self) -> tuple[user_service_pb2.RegisterResponse, str]:
        """Register a user and sign it in."""
        registered = await self.register()
        return registered, await self.login(registered.user.username)


@dataclass
class ErrorDetails:
    """The rich status of a failed call, rebuilt from its trailing metadata."""

    code: grpc.StatusCode
    message: str
    reason: str
    domain: str
    violations: dict[str, str]


def error_details(error: grpc.aio.AioRpcError) -> ErrorDetails:
    """Decode google.rpc.Status from a failed call; fails the test if ErrorInfo is missing."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    assert status is not None, f"no rich status in {error.code()}: {error.details()}"
    info = None
    violations: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations = {v.field: v.description for v in bad_request.field_violations}
    assert info is not None, "every error carries ErrorInfo"
    return ErrorDetails(error.code(), status.message, info.reason, info.domain, violations)


async def expect_error(call: object) -> ErrorDetails:
    """Await ``call`` and return the details of the error it must raise."""
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error_details(error)
    raise AssertionError("the call succeeded but an error was expected")


async def scan_table(moto_endpoint: str, table_name: str) -> list[dict[str, object]]:
    """Every item of the table, as plain Python values (for checking what was written)."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    items: list[dict[str, object]] = []
    async with open_aws_clients(moto_settings(moto_endpoint)) as clients:
        paginator = clients.dynamodb.get_paginator("scan")
        async for page in paginator.paginate(TableName=table_name, ConsistentRead=True):
            items += [
                {key: deserializer.deserialize(value) for key, value in item.items()}
                for item in page["Items"]
            ]
    return items


async def seed_users(
    moto_endpoint: str, table_name: str, usernames: list[str], *, disabled_every: int = 0
) -> None:
    """Write accounts straight into the table with batch writes, as Register would store them.

    A thousand Register calls would each hash a password and run a transaction; tests of
    listing need only the stored items, which batch writes make quickly. Every ``disabled_every``-th
    account (when set) is disabled. All share the password "correct horse battery".
    """
    from datetime import UTC, datetime

    from argon2 import PasswordHasher

    from usermgmt_server.adapters.dynamodb import codec
    from usermgmt_server.domain.identifiers import identifier_key
    from usermgmt_server.domain.model import User, UserState

    password_hash = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(
        "correct horse battery"
    )
    now = datetime.now(UTC)
    items = []
    for index, username in enumerate(usernames):
        disabled = disabled_every and index % disabled_every == 0
        user = User(
            user_id=str(uuid.uuid4()),
            username=username,
            username_key=identifier_key(username),
            email=f"{username}@example.com",
            email_key=identifier_key(f"{username}@example.com"),
            display_name=username,
            state=UserState.DISABLED if disabled else UserState.ACTIVE,
            email_verified=False,
            roles=(),
            create_time=now,
            update_time=now,
            version=1,
            password_hash=password_hash,
        )
        owner = {"user_id": {"S": user.user_id}}
        items += [
            codec.user_to_item(user, 16),
            {**codec.username_guard_key(user.username_key), **owner},
            {**codec.email_guard_key(user.email_key), **owner},
        ]
    async with open_aws_clients(moto_settings(moto_endpoint)) as clients:
        for start in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            pending = {table_name: batch}
            while pending:
                result = await clients.dynamodb.batch_write_item(RequestItems=pending)
                pending = result.get("UnprocessedItems") or {}


# -- Account lifecycle: codes, sessions, retry hints and exact error bytes ---------------------

PASSWORD = "correct horse battery"


async def expect_rpc_error(call: object) -> grpc.aio.AioRpcError:
    """Await ``call`` and return the raw error it must raise (for RetryInfo or exact bytes)."""
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError("the call succeeded but an error was expected")


def retry_delay(error: grpc.aio.AioRpcError) -> float:
    """Seconds from the google.rpc.RetryInfo of a failed call; fails the test if it is missing."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    assert status is not None, f"no rich status in {error.code()}: {error.details()}"
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToNanoseconds() / 1e9
    raise AssertionError(f"no RetryInfo in {error.code()}: {error.details()}")


def violation_reasons(error: grpc.aio.AioRpcError) -> set[tuple[str, str]]:
    """Every BadRequest field violation of a failed call as (field, reason) pairs."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    assert status is not None, f"no rich status in {error.code()}: {error.details()}"
    found: set[tuple[str, str]] = set()
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found |= {(v.field, v.reason) for v in bad_request.field_violations}
    return found


def error_bytes(error: grpc.aio.AioRpcError) -> tuple[object, ...]:
    """Everything a caller can observe of a failed call: code, message and all metadata."""
    return (
        error.code(),
        error.details(),
        tuple(error.initial_metadata() or ()),
        tuple(error.trailing_metadata() or ()),
    )


def codes_sent(
    notifier: RecordingNotifier, user_id: str, purpose: str = "VERIFY_EMAIL"
) -> list[tuple[str, str]]:
    """The (target, code) pairs sent to ``user_id`` for ``purpose``, oldest first."""
    return [(t, c) for u, p, t, c in notifier.sent if u == user_id and p == purpose]


def other_code(code: str) -> str:
    """A well-formed code that differs from ``code``."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def full_width(text: str) -> str:
    """``text`` as typed on a full-width keyboard (NFKC maps it back)."""
    return "".join(
        "\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text
    )


def forwarded_for(value: str) -> tuple[tuple[str, str], ...]:
    """Call metadata as a proxy in front of the server would add it."""
    return (("x-forwarded-for", value),)


async def authenticate(
    api: Api, login: str, password: str = PASSWORD, metadata: tuple[tuple[str, str], ...] = ()
) -> auth_service_pb2.AuthenticateResponse:
    """The full Authenticate response (session included)."""
    return await api.auth.Authenticate(
        auth_service_pb2.AuthenticateRequest(login=login, password=password), metadata=metadata
    )


async def get_me(api: Api, access_token: str) -> user_service_pb2.GetUserResponse:
    """GetUser of "me" with ``access_token``."""
    return await api.users.GetUser(
        user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(access_token)
    )


async def refresh(api: Api, refresh_token: str) -> auth_service_pb2.RefreshTokenResponse:
    """Exchange a refresh token."""
    return await api.auth.RefreshToken(
        auth_service_pb2.RefreshTokenRequest(refresh_token=refresh_token)
    )


# -- Events pipeline: queues on the topic, a stoppable SNS proxy, mail recorded by moto --------

import asyncio  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import Any  # noqa: E402

NOTIFICATION_FILTER_POLICY = {"event_type": [{"prefix": "usermgmt.notification."}]}
Message = dict[str, Any]


@asynccontextmanager
async def messaging_clients(moto_endpoint: str) -> AsyncIterator[tuple[Any, Any]]:
    """(sqs, sns) clients on the moto server, for tests that read what the server published."""
    import aioboto3

    session = aioboto3.Session(region_name="us-east-1")
    async with (
        session.client("sqs", endpoint_url=moto_endpoint) as sqs,
        session.client("sns", endpoint_url=moto_endpoint) as sns,
    ):
        yield sqs, sns


@dataclass
class SubscribedQueue:
    """An SQS queue subscribed to the events topic."""

    url: str
    arn: str
    subscription_arn: str


async def subscribe_queue(
    sqs: Any,
    sns: Any,
    name: str,
    *,
    topic_arn: str = TOPIC_ARN,
    filter_policy: dict[str, Any] | None = None,
    raw: bool = True,
) -> SubscribedQueue:
    """Create queue ``name`` and subscribe it to the topic (raw delivery unless told); the
    topic is created first when missing."""
    await sns.create_topic(Name=topic_arn.rpartition(":")[2])
    url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
    attributes = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    arn = attributes["Attributes"]["QueueArn"]
    subscription_attributes = {"RawMessageDelivery": "true" if raw else "false"}
    if filter_policy is not None:
        subscription_attributes["FilterPolicy"] = json.dumps(filter_policy)
    subscription = await sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes=subscription_attributes,
        ReturnSubscriptionArn=True,
    )
    return SubscribedQueue(url, arn, subscription["SubscriptionArn"])


async def drop_queue(sqs: Any, sns: Any, queue: SubscribedQueue) -> None:
    """Unsubscribe ``queue`` and delete it (so later publications stop fanning out to it)."""
    await sns.unsubscribe(SubscriptionArn=queue.subscription_arn)
    await sqs.delete_queue(QueueUrl=queue.url)


async def receive_batch(sqs: Any, queue_url: str) -> list[Message]:
    """Up to ten messages of ``queue_url`` (with their attributes), deleted once received."""
    response = await sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        MessageAttributeNames=["All"],
        AttributeNames=["All"],
    )
    messages: list[Message] = response.get("Messages", [])
    if messages:
        await sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages)
            ],
        )
    return messages


async def receive_until(
    sqs: Any,
    queue_url: str,
    done: Callable[[list[Message]], bool],
    *,
    within: float = 20.0,
    into: list[Message] | None = None,
) -> list[Message]:
    """Receive (and delete) messages until ``done(received)`` holds or ``within`` seconds pass;
    returns every message received (``into``, when given, collects them as they come)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    received: list[Message] = [] if into is None else into
    while not done(received) and loop.time() < deadline:
        batch = await receive_batch(sqs, queue_url)
        received += batch
        if not batch:
            await asyncio.sleep(0.1)
    return received


async def receive_all(sqs: Any, queue_url: str) -> list[Message]:
    """Every message waiting in ``queue_url`` (until two receives in a row come back empty)."""
    received: list[Message] = []
    empty = 0
    while empty < 2:
        batch = await receive_batch(sqs, queue_url)
        received += batch
        empty = 0 if batch else empty + 1
    return received


def cloudevents(messages: list[Message]) -> list[dict[str, Any]]:
    """The CloudEvents in raw-delivered messages, in the order received."""
    return [json.loads(message["Body"]) for message in messages]


class TcpProxy:
    """A TCP forwarder from 127.0.0.1 to an ``http://host:port`` endpoint that can be stopped
    (new connections are refused, open ones cut) and started again on the same port; started
    with ``hold=True`` it accepts connections but never answers (a peer that hangs)."""

    def __init__(self, target_url: str) -> None:
        import socket
        from urllib.parse import urlsplit

        target = urlsplit(target_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 80)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.hold = False
        self.connections = 0

    @property
    def url(self) -> str:
        """The endpoint URL clients use instead of the target's."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, *, hold: bool = False) -> None:
        """Accept connections and forward them (or, with ``hold``, keep them unanswered)."""
        self.hold = hold
        if self._server is None:
            self._server = await asyncio.start_server(
                self._forward, "127.0.0.1", self.port, reuse_address=True
            )

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await server.wait_closed()

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        self._writers.add(client_writer)
        if self.hold:
            try:
                while await client_reader.read(65536):
                    pass
            except OSError:
                pass
            finally:
                self._writers.discard(client_writer)
                client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.transport.abort()
            self._writers.discard(client_writer)
            return
        self._writers.add(upstream_writer)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while chunk := await reader.read(65536):
                    writer.write(chunk)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.transport.abort()

        try:
            await asyncio.gather(
                pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer)
            )
        finally:
            self._writers.discard(client_writer)
            self._writers.discard(upstream_writer)


def sent_emails() -> list[dict[str, Any]]:
    """Every e-mail moto's SES accepted so far (source, destinations, subject, body: the HTML
    part when there is one).

    The session's moto server runs in this process, so its SES backend is read directly: the
    same records are served over HTTP by ``/moto-api/data.json``, but that endpoint serialises
    every model moto ever tracked and takes seconds once the session holds many items.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    backend = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    return [
        {
            "source": message.source,
            "destinations": message.destinations,
            "subject": getattr(message, "subject", ""),
            "body": getattr(message, "body", getattr(message, "raw_data", "")),
        }
        for message in list(backend.sent_messages)
    ]


def emails_to(emails: list[dict[str, Any]], address: str) -> list[dict[str, Any]]:
    """The e-mails among ``emails`` addressed to ``address``."""
    found = []
    for email in emails:
        destinations = email.get("destinations") or []
        if isinstance(destinations, dict):
            recipients = [a for values in destinations.values() for a in values]
        else:
            recipients = list(destinations)
        if address in recipients:
            found.append(email)
    return found


async def outbox_items(moto_endpoint: str, table_name: str) -> list[dict[str, Any]]:
    """The outbox items of ``table_name`` (events not yet published)."""
    items = await scan_table(moto_endpoint, table_name)
    return [item for item in items if str(item["pk"]).startswith("OUTBOX#")]


async def wait_for(
    condition: Callable[[], Any], *, within: float = 20.0, every: float = 0.2
) -> bool:
    """Await ``condition()`` (a coroutine function) until it is truthy or ``within`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if await condition():
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(every)


FROM_ADDRESS = "no-reply@usermgmt.local"


@dataclass
class NotifierUnderTest:
    """An in-process notifier worker on its own queue (with DLQ) subscribed to the topic."""

    clients: Any
    pipeline: Any
    worker: Any
    markers: Any

    async def deliver_all(self, *, within: float = 20.0) -> int:
        """Poll until a poll comes back empty (or ``within`` passes); messages handled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        handled = 0
        while loop.time() < deadline:
            count = await self.worker.poll_once()
            if not count:
                break
            handled += count
        return handled

    async def deliver_until_sent(self, event_ids: Iterable[str], *, within: float = 20.0) -> bool:
        """Run the worker until each of ``event_ids`` is marked sent (the sender's provider
        accepted it) or ``within`` passes; whether all were sent."""
        pending = set(event_ids)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            await self.deliver_all(within=within)
            for event_id in list(pending):
                if await self.markers.state(event_id) == "sent":
                    pending.discard(event_id)
            if not pending:
                return True
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.1)


def notification_ids(notifier: RecordingNotifier, user_id: str, event_type: str) -> list[str]:
    """Ids of the ``event_type`` events the server committed about ``user_id``."""
    return [
        event.event_id  # type: ignore[attr-defined]
        for event in notifier.events
        if event.subject == user_id and event.type == event_type  # type: ignore[attr-defined]
    ]


@asynccontextmanager
async def notifier_under_test(
    moto_endpoint: str,
    table_name: str,
    *,
    max_receive_count: int = 5,
    visibility_timeout: int = 30,
    clock: Any = None,
) -> AsyncIterator[NotifierUnderTest]:
    """Build the notification queue, its DLQ and subscription, verify the sender address in
    SES, and yield a worker (short polls) delivering through SES and SNS on the moto server.
    The queues and the subscription are removed on exit."""
    from usermgmt_server.adapters.security.system import SystemClock
    from usermgmt_server.notifier.markers import NotificationMarkers
    from usermgmt_server.notifier.resources import (
        ensure_email_identity,
        ensure_notification_pipeline,
    )
    from usermgmt_server.notifier.senders import Senders, SesEmailSender, SnsSmsSender
    from usermgmt_server.notifier.worker import NotifierWorker

    async with open_aws_clients(moto_settings(moto_endpoint), messaging=True) as clients:
        await clients.sns.create_topic(Name=TOPIC_ARN.rpartition(":")[2])
        pipeline = await ensure_notification_pipeline(
            clients,
            TOPIC_ARN,
            f"notify-{uuid.uuid4().hex[:10]}",
            max_receive_count=max_receive_count,
            visibility_timeout=visibility_timeout,
        )
        try:
            await ensure_email_identity(clients.sesv2, FROM_ADDRESS)
            markers = NotificationMarkers(clients.dynamodb, table_name)
            worker = NotifierWorker(
                clients.sqs,
                pipeline.queue_url,
                Senders(
                    email=SesEmailSender(clients.sesv2, FROM_ADDRESS),
                    sms=SnsSmsSender(clients.sns),
                ),
                markers,
                clock or SystemClock(),
                wait_seconds=0,
                visibility_timeout=visibility_timeout,
            )
            yield NotifierUnderTest(clients, pipeline, worker, markers)
        finally:
            await clients.sns.unsubscribe(SubscriptionArn=pipeline.subscription_arn)
            await clients.sqs.delete_queue(QueueUrl=pipeline.queue_url)
            await clients.sqs.delete_queue(QueueUrl=pipeline.dlq_url)


_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?")


def mentions_code(text: str, code: str) -> bool:
    """Whether ``text`` holds the digits ``code`` on their own (timestamps, whose fractions
    could hold any six digits, are not looked at)."""
    masked = _ISO_TIME.sub("<time>", text)
    return re.search(rf"(?<![0-9]){re.escape(code)}(?![0-9])", masked) is not None
