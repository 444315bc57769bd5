"""The bounds the service is compared against, each measured in a process of its own so that its
CPU time is only that of the measured work. Run as ``python -m tests.bench.bounds KIND …`` with
the server's environment; prints one JSON object.

- ``argon2``: verifications per second with the server's Argon2 parameters on as many threads
  as the server hashes with, and CPU per verification.
- ``getitem``: aioboto3's CPU per GetItem (the server's client settings and request) against
  the same emulator; the emulator's own CPU is in another process and not counted.
- ``tokens``: CPU per access-token verification, by the server's verifier and by the client
  package's ``usermgmt.verify.TokenVerifier`` (keys fetched from the running server) for a
  token seen the first time and one seen before, and the raw ECDSA P-256 verification
  underneath them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.bench.calls import PASSWORD


def argon2_rate(threads: int, duration: float) -> dict[str, float]:
    """Verifications per second on ``threads`` threads, and CPU seconds per verification."""
    from argon2 import PasswordHasher, Type

    from usermgmt_server.config import load_settings

    settings = load_settings(environ=os.environ)
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        type=Type.ID,
    )
    password_hash = hasher.hash(PASSWORD)
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    deadline = 0.0

    def work(index: int) -> float:
        start.wait()
        while time.monotonic() < deadline:
            hasher.verify(password_hash, PASSWORD)
            counts[index] += 1
        return time.monotonic()

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(work, index) for index in range(threads)]
        cpu_before = time.process_time()
        began = time.monotonic()
        deadline = began + duration
        start.wait()
        ended = max(future.result() for future in futures)
        cpu = time.process_time() - cpu_before
    verifies = sum(counts)
    return {
        "threads": threads,
        "verifies": verifies,
        "verifies_per_second": verifies / (ended - began),
        "cpu_ms_per_verify": cpu / max(verifies, 1) * 1000,
    }


async def getitem_cost(
    concurrency: int, duration: float, user_id: str, rate: float, wait_for_go: bool = False
) -> dict[str, float]:
    """aioboto3 CPU per GetItem with up to ``concurrency`` calls in flight, ``rate`` calls per
    second in all (0: back to back). CPU per call depends on the rate (more calls share each
    wake-up of the event loop), so the bound is taken at the rate GetUser runs at. With
    ``wait_for_go`` it prints ``ready`` once warmed up and starts when a line comes on stdin,
    so it can run beside another measurement."""
    from usermgmt_server.adapters.dynamodb import codec
    from usermgmt_server.adapters.dynamodb.clients import open_aws_clients
    from usermgmt_server.app import aws_settings
    from usermgmt_server.config import load_settings

    settings = load_settings(environ=os.environ)
    async with open_aws_clients(aws_settings(settings)) as clients:
        dynamodb = clients.dynamodb

        async def get() -> None:
            response = await dynamodb.get_item(
                TableName=settings.table_name, Key=codec.user_key(user_id), ConsistentRead=True
            )
            if "Item" not in response:
                raise RuntimeError(f"no user {user_id} in {settings.table_name}")

        for _ in range(20):  # botocore loads its models and endpoints on the first calls
            await get()
        if wait_for_go:
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        calls = 0

        interval = concurrency / rate if rate else 0.0

        async def loop(due: float, deadline: float) -> None:
            nonlocal calls
            while due < deadline:
                await asyncio.sleep(due - time.monotonic())
                await get()
                calls += 1
                due = max(due + interval, time.monotonic()) if interval else time.monotonic()

        cpu_before = time.process_time()
        began = time.monotonic()
        await asyncio.gather(
            *(
                loop(began + interval * n / concurrency, began + duration)
                for n in range(concurrency)
            )
        )
        wall = time.monotonic() - began
        cpu = time.process_time() - cpu_before
    return {
        "concurrency": concurrency,
        "calls": calls,
        "calls_per_second": calls / wall,
        "cpu_ms_per_call": cpu / max(calls, 1) * 1000,
    }


def _per_second(work: Callable[[], object], duration: float) -> dict[str, float]:
    """How often ``work`` runs per CPU second of this (single-threaded) loop."""
    for _ in range(50):
        work()
    calls = 0
    cpu_before = time.process_time()
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        for _ in range(50):
            work()
        calls += 50
    cpu = time.process_time() - cpu_before
    return {"calls": calls, "per_cpu_second": calls / cpu, "cpu_us_per_call": cpu / calls * 1e6}


async def token_costs(target: str, user_id: str, duration: float) -> dict[str, Any]:
    """CPU per verification: server side, client verifier, raw ECDSA P-256."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from usermgmt.verify import TokenVerifier
    from usermgmt_server.adapters.security.access_tokens import JwtAccessTokens
    from usermgmt_server.adapters.security.signing_keys import KeySet, SigningKey
    from usermgmt_server.adapters.security.system import SystemClock
    from usermgmt_server.config import load_settings
    from usermgmt_server.domain.accounts import new_account

    settings = load_settings(environ=os.environ)
    assert settings.jwt_private_key is not None
    signing_key = SigningKey.from_pem(settings.jwt_private_key.encode())
    tokens = JwtAccessTokens(
        KeySet(signing_key),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=timedelta(seconds=settings.access_token_ttl),
        clock=SystemClock(),
    )
    user = new_account(
        user_id=user_id,
        now=datetime.now(UTC),
        username="u",
        email="",
        display_name="",
        roles=(),
        password_hash="",
        email_verified=True,
    )
    token = tokens.issue(user).token
    server = _per_second(lambda: tokens.verify(token), duration)

    client = {}
    # Without memory every call checks the signature, as for a token seen the first time.
    for case, cache_size in (("client_verify_first", 0), ("client_verify_repeated", 10_000)):
        async with TokenVerifier(
            target,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            cache_size=cache_size,
        ) as verifier:
            await verifier.verify(token)  # fetches the key set through GetJwks
            client[case] = await _per_second_async(
                lambda v=verifier: v.verify(token),
                duration,  # type: ignore[misc]
            )

    signing_input, _, signature = token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key = signing_key.private_key.public_key()
    algorithm = ec.ECDSA(hashes.SHA256())
    ecdsa = _per_second(lambda: public_key.verify(der, signing_input.encode(), algorithm), duration)
    return {"server_verify": server, **client, "ecdsa_p256_verify": ecdsa}


async def _per_second_async(work: Callable[[], Any], duration: float) -> dict[str, float]:
    for _ in range(50):
        await work()
    calls = 0
    cpu_before = time.process_time()
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        for _ in range(50):
            await work()
        calls += 50
    cpu = time.process_time() - cpu_before
    return {"calls": calls, "per_cpu_second": calls / cpu, "cpu_us_per_call": cpu / calls * 1e6}


def main(argv: list[str] | None = None) -> int:
    """Measure one bound and print it as JSON."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bounds")
    parser.add_argument("kind", choices=("argon2", "getitem", "tokens"))
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--user-id", default="")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--wait-for-go", action="store_true")
    parser.add_argument("--target", default="")
    arguments = parser.parse_args(argv)
    if arguments.kind == "argon2":
        result: dict[str, Any] = argon2_rate(arguments.threads, arguments.duration)
    elif arguments.kind == "getitem":
        result = asyncio.run(
            getitem_cost(
                arguments.concurrency,
                arguments.duration,
                arguments.user_id,
                arguments.rate,
                arguments.wait_for_go,
            )
        )
    else:
        result = asyncio.run(token_costs(arguments.target, arguments.user_id, arguments.duration))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
