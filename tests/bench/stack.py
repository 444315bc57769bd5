"""The system under test: the AWS emulator and ``usermgmt-server`` processes, each a process of
its own so that their CPU time can be told apart, plus the accounts the load uses."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deploy.cluster.emulator import BANNER as EMULATOR_BANNER
from deploy.cluster.processes import LoggedProcess
from tests.bench import procstat
from tests.bench.calls import PASSWORD, Identity
from tests.e2e.harness import create_table, moto_settings, new_signing_key_pem, server_environment
from usermgmt_server.adapters.dynamodb import codec
from usermgmt_server.adapters.dynamodb.clients import open_aws_clients
from usermgmt_server.adapters.security.access_tokens import JwtAccessTokens
from usermgmt_server.adapters.security.signing_keys import KeySet, SigningKey
from usermgmt_server.adapters.security.system import SystemClock
from usermgmt_server.config import Settings, load_settings
from usermgmt_server.domain.accounts import new_account
from usermgmt_server.domain.model import User

SERVER_COMMAND = str(Path(sys.executable).parent / "usermgmt-server")
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}
START_TIMEOUT = 60.0
# DynamoUserRepository's default shard count of the listing index.
LIST_SHARDS = 16


@dataclass(frozen=True, slots=True)
class Server:
    """A started ``usermgmt-server``: its address and the processes that serve calls."""

    address: str
    worker_pids: tuple[int, ...]
    process: LoggedProcess

    def peak_rss(self) -> dict[int, int]:
        """Peak resident set size of each worker process so far, in bytes."""
        return {pid: procstat.peak_rss_bytes(pid) for pid in self.worker_pids}


class Stack:
    """The emulator, a table with seeded accounts, and the environment servers start with.

    ``hash_workers`` fixes the hashing threads of every worker process; the Argon2 bound is
    measured with the same number.
    """

    def __init__(self, log_dir: Path, *, hash_workers: int) -> None:
        self.log_dir = log_dir
        self.table = f"usermgmt-bench-{uuid.uuid4().hex[:8]}"
        self._pem = new_signing_key_pem()
        self._hash_workers = hash_workers
        self._emulator = LoggedProcess(
            "emulator",
            [sys.executable, "-m", "deploy.cluster.emulator"],
            {**_base_environment(), **FAKE_AWS},
            log_dir / "emulator.log",
        )
        self.endpoint = ""
        self.settings: Settings | None = None

    @property
    def emulator_pid(self) -> int:
        """The process id of the AWS emulator."""
        return self._emulator.pid

    def environment(self, workers: int) -> dict[str, str]:
        """The environment of a server process with ``workers`` worker processes."""
        environ = server_environment(
            self.endpoint,
            self.table,
            USERMGMT_JWT_PRIVATE_KEY=self._pem,
            USERMGMT_WORKERS=str(workers),
            USERMGMT_HASH_WORKERS=str(self._hash_workers),
            # The service's own Argon2 parameters (the OWASP defaults), not the tests' cheap ones.
            USERMGMT_ARGON2_TIME_COST="",
            USERMGMT_ARGON2_MEMORY_KIB="",
            # Accounts are seeded with an administrator among them; no hashing at start-up.
            USERMGMT_BOOTSTRAP_ADMIN_USERNAME="",
            USERMGMT_BOOTSTRAP_ADMIN_PASSWORD="",
            USERMGMT_HEALTH_INTERVAL="5",
            USERMGMT_LOG_LEVEL="WARNING",
        )
        return {**_base_environment(), **FAKE_AWS, **environ}

    def start(self) -> None:
        """Start the emulator and create the table and topic."""
        self._emulator.start()
        match = self._emulator.wait_for_output(rf"{EMULATOR_BANNER} (\S+)", START_TIMEOUT)
        self.endpoint = match.group(1)
        asyncio.run(create_table(self.endpoint, self.table))
        self.settings = load_settings(environ=self.environment(1))

    def stop(self) -> None:
        """Stop the emulator."""
        self._emulator.stop(10)

    def seed(self, count: int) -> tuple[list[Identity], Identity]:
        """Write ``count`` active accounts and one administrator straight into the table (all
        with ``PASSWORD`` hashed with the server's parameters); returns them with tokens."""
        assert self.settings is not None
        from argon2 import PasswordHasher, Type

        hasher = PasswordHasher(
            time_cost=self.settings.argon2_time_cost,
            memory_cost=self.settings.argon2_memory_kib,
            parallelism=self.settings.argon2_parallelism,
            type=Type.ID,
        )
        password_hash = hasher.hash(PASSWORD)
        now = datetime.now(UTC)
        users = [
            _user(f"bench-{index:05d}-{uuid.uuid4().hex[:6]}", password_hash, now)
            for index in range(count)
        ]
        admin = _user(f"bench-admin-{uuid.uuid4().hex[:6]}", password_hash, now, ("admin",))
        asyncio.run(_write_users(self.endpoint, self.table, [*users, admin]))
        tokens = self.token_issuer()
        accounts = [Identity(u.user_id, u.username, tokens.issue(u).token) for u in users]
        return accounts, Identity(admin.user_id, admin.username, tokens.issue(admin).token)

    def token_issuer(self) -> JwtAccessTokens:
        """Issues access tokens as the servers do (same key, issuer, audience)."""
        assert self.settings is not None
        return JwtAccessTokens(
            KeySet(SigningKey.from_pem(self._pem.encode())),
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            ttl=timedelta(seconds=self.settings.access_token_ttl),
            clock=SystemClock(),
        )

    @contextmanager
    def server(self, workers: int) -> Iterator[Server]:
        """A ``usermgmt-server`` with ``workers`` worker processes, stopped on exit."""
        process = LoggedProcess(
            f"usermgmt-server --workers {workers}",
            [SERVER_COMMAND],
            self.environment(workers),
            self.log_dir / f"server-{workers}w-{uuid.uuid4().hex[:4]}.log",
        )
        process.start()
        try:
            match = process.wait_for_output(r"usermgmt listening on (\S+)", START_TIMEOUT)
            # One worker is the process itself; more run under a supervisor that serves nothing.
            pids = (process.pid,) if workers == 1 else tuple(procstat.children(process.pid))
            if len(pids) != workers:
                raise RuntimeError(f"expected {workers} worker processes, found {pids}")
            yield Server(match.group(1), pids, process)
        finally:
            process.stop(30)


def _base_environment() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "PYTHONPATH")
    return {key: os.environ[key] for key in keep if key in os.environ}


def _user(username: str, password_hash: str, now: datetime, roles: tuple[str, ...] = ()) -> User:
    return new_account(
        user_id=str(uuid.uuid4()),
        now=now,
        username=username,
        email=f"{username}@example.com",
        display_name=username,
        roles=roles,
        password_hash=password_hash,
        email_verified=True,
    )


async def _write_users(endpoint: str, table: str, users: list[User]) -> None:
    """Accounts as Register stores them (user item and guards), in batches: registering them
    through the API would spend the time in the emulator's transactions."""
    items = []
    for user in users:
        owner = {"user_id": {"S": user.user_id}}
        items += [
            codec.user_to_item(user, LIST_SHARDS),
            {**codec.username_guard_key(user.username_key), **owner},
            {**codec.email_guard_key(user.email_key), **owner},
        ]
    async with open_aws_clients(moto_settings(endpoint)) as clients:
        for start in range(0, len(items), 25):
            pending = {table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
            while pending:
                result = await clients.dynamodb.batch_write_item(RequestItems=pending)
                pending = result.get("UnprocessedItems") or {}
