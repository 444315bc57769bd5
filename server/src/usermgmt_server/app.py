"""The composition root: the only module that knows every concrete adapter."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, replace
from datetime import timedelta

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from usermgmt.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    probe_service_pb2,
    probe_service_pb2_grpc,
    user_service_pb2,
    user_service_pb2_grpc,
)
from usermgmt_server.adapters.dynamodb import (
    DynamoCodeStore,
    DynamoLeaseStore,
    DynamoLoginFailureStore,
    DynamoOutbox,
    DynamoRefreshTokenStore,
)
from usermgmt_server.adapters.dynamodb.clients import AwsClients, AwsSettings, open_aws_clients
from usermgmt_server.adapters.dynamodb.repository import DynamoUserRepository
from usermgmt_server.adapters.dynamodb.resources import create_resources, table_is_reachable
from usermgmt_server.adapters.events.cloudevents import opened
from usermgmt_server.adapters.events.delivery import Publisher
from usermgmt_server.adapters.events.publisher import SnsEventPublisher
from usermgmt_server.adapters.events.relay import EventObserver, OutboxRelay
from usermgmt_server.adapters.events.sweeper import OutboxSweeper
from usermgmt_server.adapters.security.access_tokens import JwtAccessTokens
from usermgmt_server.adapters.security.common_passwords import load_common_passwords
from usermgmt_server.adapters.security.keyed_hash import HmacKeyedHasher, derive_key
from usermgmt_server.adapters.security.page_tokens import SignedPageTokens
from usermgmt_server.adapters.security.passwords import Argon2Parameters, Argon2PasswordHasher
from usermgmt_server.adapters.security.sealing import AesGcmSealer
from usermgmt_server.adapters.security.signing_keys import KeySet, SigningKey
from usermgmt_server.adapters.security.system import RandomUserIds, SystemClock
from usermgmt_server.api.auth_servicer import AuthServicer
from usermgmt_server.api.interceptors import CallGuardInterceptor
from usermgmt_server.api.rate_limit import RateLimiter
from usermgmt_server.api.readiness import ProbeServicer, Readiness, monitor_storage
from usermgmt_server.api.session_guard import SessionGuard
from usermgmt_server.api.user_servicer import UserServicer
from usermgmt_server.config import Settings
from usermgmt_server.domain.bulk_import import UserImporter
from usermgmt_server.domain.credentials import Credentials
from usermgmt_server.domain.events import DomainEvent
from usermgmt_server.domain.lockout import LockoutPolicy
from usermgmt_server.domain.manager import UserManager
from usermgmt_server.domain.password_policy import PasswordPolicy
from usermgmt_server.domain.ports import Clock
from usermgmt_server.domain.sessions import SessionService
from usermgmt_server.domain.sign_in import SignIn
from usermgmt_server.domain.verification import CodeRules, CodeService
from usermgmt_server.embedded import EMBEDDED_CREDENTIALS, embedded_aws
from usermgmt_server.grpc_options import server_options
from usermgmt_server.notifier.embedded import EMBEDDED_QUEUE_NAME, run_embedded_notifier
from usermgmt_server.notifier.resources import ensure_notification_pipeline

logger = logging.getLogger(__name__)

SERVICE_NAMES = (
    user_service_pb2.DESCRIPTOR.services_by_name["UserService"].full_name,
    auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
    probe_service_pb2.DESCRIPTOR.services_by_name["ProbeService"].full_name,
)


def aws_settings(
    settings: Settings,
    endpoint_url: str | None = None,
    credentials: dict[str, str] | None = None,
) -> AwsSettings:
    """How this process reaches AWS; ``endpoint_url`` overrides the configured endpoint."""
    return AwsSettings(
        region=settings.aws_region,
        endpoint_url=endpoint_url or settings.aws_endpoint_url,
        max_attempts=settings.aws_max_attempts,
        connect_timeout=settings.aws_connect_timeout,
        read_timeout=settings.aws_read_timeout,
        credentials=credentials,
    )


class StartupError(Exception):
    """The server could not start; the message says why."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a started server listens."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Application:
    """One server process: AWS clients, adapters, the manager and the gRPC server.

    ``start`` brings everything up (and the embedded emulator when asked); ``stop`` drains,
    lets in-flight RPCs finish and releases every resource in reverse order.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        observer: EventObserver | None = None,
        share_port: bool = False,
    ) -> None:
        """``clock`` replaces the system clock; ``observer`` sees every committed event;
        ``share_port`` lets other worker processes listen on the same port (SO_REUSEPORT)."""
        self._settings = settings
        self._share_port = share_port
        self._clock = clock
        self._observer = observer
        self._stack = AsyncExitStack()
        self._server: grpc.aio.Server | None = None
        self._readiness: Readiness | None = None
        self.endpoint: Endpoint | None = None
        self.manager: UserManager | None = None

    async def start(self) -> Endpoint:
        """Start serving; returns the bound address (useful with port 0)."""
        try:
            return await self._start()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _start(self) -> Endpoint:
        settings = self._settings
        aws = await self._open_aws()
        clients = await self._stack.enter_async_context(
            open_aws_clients(aws, messaging=settings.embedded)
        )
        topic_arn = settings.topic_arn
        if settings.embedded:
            resources = await create_resources(clients, settings.table_name, settings.topic_name)
            topic_arn = resources.topic_arn
            await self._start_embedded_notifier(clients, topic_arn)
        hasher = Argon2PasswordHasher(
            Argon2Parameters(
                time_cost=settings.argon2_time_cost,
                memory_cost_kib=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
            ),
            workers=settings.hash_workers,
            max_pending=settings.hash_max_pending,
            queue_timeout=settings.hash_queue_timeout,
        )
        self._stack.callback(hasher.close)
        secret = settings.hmac_secret or secrets.token_bytes(32)
        clock = self._clock or SystemClock()
        key_set = KeySet(self._signing_key())
        tokens = JwtAccessTokens(
            key_set,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl=timedelta(seconds=settings.access_token_ttl),
            clock=clock,
        )
        keyed_hasher = HmacKeyedHasher(secret)
        table = settings.table_name
        sealer = AesGcmSealer(derive_key(secret, "outbox-seal"))
        relay = await self._start_events(clients, aws, topic_arn, clock, sealer)
        users = DynamoUserRepository(clients.dynamodb, table, clock=clock)
        failures = DynamoLoginFailureStore(clients.dynamodb, table, clock=clock)
        policy = PasswordPolicy(
            min_length=settings.password_min_length, blocklist=load_common_passwords()
        )
        codes = CodeService(
            users=users,
            codes=DynamoCodeStore(clients.dynamodb, table, clock=clock),
            relay=relay,
            sealer=sealer,
            keyed_hasher=keyed_hasher,
            clock=clock,
            rules=CodeRules(
                ttl=timedelta(seconds=settings.code_ttl),
                max_attempts=settings.code_max_attempts,
                cooldown=timedelta(seconds=settings.resend_cooldown),
            ),
        )
        sessions = SessionService(
            users=users,
            refresh_tokens=DynamoRefreshTokenStore(clients.dynamodb, table, clock=clock),
            access_tokens=tokens,
            keyed_hasher=keyed_hasher,
            clock=clock,
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl),
        )
        sign_in = SignIn(
            users=users,
            failures=failures,
            passwords=hasher,
            sessions=sessions,
            clock=clock,
            lockout=LockoutPolicy(
                threshold=settings.lockout_threshold,
                base_delay=timedelta(seconds=settings.lockout_base_delay),
                max_delay=timedelta(seconds=settings.lockout_max_delay),
                hard_limit=settings.lockout_hard_limit,
            ),
            relay=relay,
        )
        ids = RandomUserIds()
        self.manager = UserManager(
            users=users,
            passwords=hasher,
            policy=policy,
            codes=codes,
            page_tokens=SignedPageTokens(derive_key(secret, "page-token")),
            keyed_hasher=keyed_hasher,
            clock=clock,
            ids=ids,
            relay=relay,
            require_email_verification=settings.require_email_verification,
        )
        importer = UserImporter(
            users=users,
            passwords=hasher,
            policy=policy,
            codes=codes,
            clock=clock,
            ids=ids,
            relay=relay,
            # Half of the hashing queue, so that sign-ins still find room during an import.
            concurrency=max(1, settings.hash_max_pending // 2),
        )
        credentials = Credentials(
            users=users,
            passwords=hasher,
            policy=policy,
            sessions=sessions,
            sign_in=sign_in,
            codes=codes,
            failures=failures,
            clock=clock,
            relay=relay,
        )
        if settings.bootstrap_admin_username and settings.bootstrap_admin_password:
            await self.manager.ensure_admin(
                settings.bootstrap_admin_username,
                settings.bootstrap_admin_password,
                settings.bootstrap_admin_email or "",
            )
        health_servicer = health.aio.HealthServicer()
        self._readiness = Readiness(health_servicer, list(SERVICE_NAMES))
        interceptor = CallGuardInterceptor(
            tokens,
            SessionGuard(users, sessions, settings.session_cache_seconds),
            RateLimiter(settings.rate_limit_per_minute),
            settings.trusted_proxy_hops,
        )
        server = self._build_server(interceptor, health_servicer)
        user_service_pb2_grpc.add_UserServiceServicer_to_server(
            UserServicer(
                manager=self.manager,
                codes=codes,
                credentials=credentials,
                sign_in=sign_in,
                importer=importer,
            ),
            server,
        )
        auth_service_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthServicer(sign_in=sign_in, sessions=sessions, users=users, jwks=key_set.jwks),
            server,
        )
        endpoint = self._bind(server)
        await server.start()
        self._server = server
        self._stack.push_async_callback(self._stop_server)

        async def storage_check() -> bool:
            return await table_is_reachable(clients.dynamodb, settings.table_name)

        await self._readiness.storage_reachable(await storage_check())
        monitor = asyncio.create_task(
            monitor_storage(self._readiness, storage_check, settings.health_interval)
        )
        self._stack.push_async_callback(_cancel, monitor)
        self.endpoint = endpoint
        logger.info("serving", extra={"address": str(endpoint), "embedded": settings.embedded})
        return endpoint

    async def _start_embedded_notifier(self, clients: AwsClients, topic_arn: str) -> None:
        """Embedded mode delivers notifications in-process and shows each message on stdout.

        The queue and its subscription exist before the server serves, so no event published
        from the first call on can miss them.
        """
        await ensure_notification_pipeline(clients, topic_arn, EMBEDDED_QUEUE_NAME)
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_embedded_notifier(
                clients,
                self._settings.table_name,
                topic_arn,
                self._settings.notifier_from_address,
                stop,
                echo=sys.stdout,
                wait_seconds=1,
            )
        )

        async def stop_notifier() -> None:
            stop.set()
            try:
                await asyncio.wait_for(task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception:
                logger.exception("embedded notifier failed")

        self._stack.push_async_callback(stop_notifier)

    async def _start_events(
        self,
        clients: AwsClients,
        aws: AwsSettings,
        topic_arn: str | None,
        clock: Clock,
        sealer: AesGcmSealer,
    ) -> OutboxRelay:
        """The relay that publishes committed events, and the sweeper for what it leaves."""
        settings = self._settings
        outbox = DynamoOutbox(clients.dynamodb, settings.table_name)
        sns = clients.sns
        if settings.sns_endpoint_url:
            sns_clients = await self._stack.enter_async_context(
                open_aws_clients(replace(aws, endpoint_url=settings.sns_endpoint_url))
            )
            sns = sns_clients.sns
        if topic_arn is None:
            logger.warning("USERMGMT_TOPIC_ARN is not set: events stay in the outbox")
            publisher: Publisher = _NoTopic()
        else:
            publisher = SnsEventPublisher(sns, topic_arn, sealer)
        relay = OutboxRelay(
            publisher, outbox, observer=self._observer, opener=lambda e: opened(e, sealer)
        )
        self._stack.push_async_callback(relay.drain, settings.shutdown_grace)
        sweeper = OutboxSweeper(
            outbox,
            publisher,
            DynamoLeaseStore(clients.dynamodb, settings.table_name),
            clock,
            interval=timedelta(seconds=settings.outbox_sweep_interval),
            grace=timedelta(seconds=settings.outbox_grace),
        )
        task = asyncio.create_task(sweeper.run())
        self._stack.push_async_callback(_cancel, task)
        return relay

    async def stop(self) -> None:
        """Report NOT_SERVING, wait the drain period, finish in-flight RPCs, release resources."""
        if self._readiness is not None:
            await self._readiness.start_draining()
            if self._settings.drain_seconds:
                logger.info("draining", extra={"seconds": self._settings.drain_seconds})
                await asyncio.sleep(self._settings.drain_seconds)
        await self._stack.aclose()

    async def wait_for_termination(self) -> None:
        """Block until the gRPC server stops."""
        if self._server is not None:
            await self._server.wait_for_termination()

    async def _open_aws(self) -> AwsSettings:
        if not self._settings.embedded:
            return aws_settings(self._settings)
        endpoint_url = self._stack.enter_context(embedded_aws())
        return aws_settings(self._settings, endpoint_url, EMBEDDED_CREDENTIALS)

    def _signing_key(self) -> SigningKey:
        settings = self._settings
        if settings.jwt_private_key:
            return SigningKey.from_pem(settings.jwt_private_key.encode("utf-8"))
        if settings.jwt_private_key_file:
            return SigningKey.from_pem_file(settings.jwt_private_key_file)
        return SigningKey.generate()

    def _build_server(
        self, interceptor: CallGuardInterceptor, health_servicer: health.aio.HealthServicer
    ) -> grpc.aio.Server:
        assert self._readiness is not None
        server = grpc.aio.server(
            interceptors=[interceptor],
            maximum_concurrent_rpcs=self._settings.max_concurrent_rpcs,
            options=server_options(self._settings, share_port=self._share_port),
        )
        probe_service_pb2_grpc.add_ProbeServiceServicer_to_server(
            ProbeServicer(self._readiness), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        if self._settings.reflection:
            reflection.enable_server_reflection(
                (
                    *SERVICE_NAMES,
                    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                    reflection.SERVICE_NAME,
                ),
                server,
            )
        return server

    def _bind(self, server: grpc.aio.Server) -> Endpoint:
        address = self._settings.listen_address
        host, _, port_text = address.rpartition(":")
        try:
            port = server.add_insecure_port(address)
        except RuntimeError as error:
            raise StartupError(f"cannot listen on {address}: {error}") from None
        if port == 0 and port_text != "0":
            raise StartupError(f"cannot listen on {address}")
        return Endpoint(host.strip("[]") or "0.0.0.0", port)

    async def _stop_server(self) -> None:
        if self._server is not None:
            await self._server.stop(self._settings.shutdown_grace)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


class _NoTopic:
    """Publisher for a server without a topic: refuses, so events wait in the outbox."""

    async def publish(self, events: Sequence[DomainEvent]) -> dict[str, str]:
        raise RuntimeError("no SNS topic configured (USERMGMT_TOPIC_ARN)")
