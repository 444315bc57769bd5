"""Settings from ``USERMGMT_*`` (and standard AWS) environment variables and matching flags.

One table, ``OPTIONS``, declares every setting: its environment variable, its flag, its type,
its default and its help text. Flags win over the environment. Secrets have no flag, so they
never show in the process list.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

EMBEDDED_LISTEN_ADDRESS = "127.0.0.1:50051"
DEFAULT_LISTEN_ADDRESS = "0.0.0.0:50051"
MIN_SECRET_BYTES = 32


class ConfigError(Exception):
    """The settings are incomplete or invalid; the message says what to set."""


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


# gRPC takes durations as 32-bit milliseconds.
MAX_GRPC_SECONDS = 2_000_000


def _at_least_one_second(text: str) -> float:
    value = float(text)
    if not 1 <= value <= MAX_GRPC_SECONDS:
        raise ValueError(f"must be between 1 and {MAX_GRPC_SECONDS} seconds")
    return value


def _off_or_at_least_one_second(text: str) -> float:
    value = float(text)
    if value != 0 and not 1 <= value <= MAX_GRPC_SECONDS:
        raise ValueError(f"must be 0 (off) or between 1 and {MAX_GRPC_SECONDS} seconds")
    return value


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: where it comes from and how it is read."""

    name: str
    env: str
    help: str
    parse: Callable[[str], Any] = str
    default: Any = None
    secret: bool = False
    fallback_env: str | None = None

    @property
    def flag(self) -> str | None:
        """The command-line flag, or ``None`` for secrets (environment only)."""
        return None if self.secret else "--" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option(
        "embedded",
        "USERMGMT_EMBEDDED",
        "Run with an in-process AWS emulator (moto); data lives in memory and is lost at exit.",
        _boolean,
        False,
    ),
    Option(
        "listen_address",
        "USERMGMT_LISTEN_ADDRESS",
        "host:port to serve gRPC on "
        f"(default {EMBEDDED_LISTEN_ADDRESS} embedded, {DEFAULT_LISTEN_ADDRESS} otherwise).",
    ),
    Option(
        "table_name",
        "USERMGMT_TABLE_NAME",
        "DynamoDB table (required unless embedded; embedded default: usermgmt).",
    ),
    Option(
        "topic_name",
        "USERMGMT_TOPIC_NAME",
        "SNS topic for events (create-resources and embedded mode).",
        str,
        "usermgmt-events",
    ),
    Option(
        "aws_region",
        "AWS_REGION",
        "AWS region (required unless embedded).",
        fallback_env="AWS_DEFAULT_REGION",
    ),
    Option("aws_endpoint_url", "AWS_ENDPOINT_URL", "Custom AWS endpoint, e.g. a local emulator."),
    Option(
        "aws_max_attempts",
        "USERMGMT_AWS_MAX_ATTEMPTS",
        "Attempts per AWS call (botocore "
        "standard retry mode) before the RPC fails with UNAVAILABLE.",
        _positive_int,
        3,
    ),
    Option(
        "aws_connect_timeout",
        "USERMGMT_AWS_CONNECT_TIMEOUT",
        "Seconds to connect to AWS.",
        _non_negative_float,
        2.0,
    ),
    Option(
        "aws_read_timeout",
        "USERMGMT_AWS_READ_TIMEOUT",
        "Seconds to wait for an AWS response.",
        _non_negative_float,
        5.0,
    ),
    Option(
        "jwt_private_key",
        "USERMGMT_JWT_PRIVATE_KEY",
        "PEM of the P-256 (ES256) key that signs access tokens.",
        secret=True,
    ),
    Option(
        "jwt_private_key_file",
        "USERMGMT_JWT_PRIVATE_KEY_FILE",
        "File holding that PEM "
        "(one of the two is required unless embedded, where a key is generated).",
    ),
    Option("jwt_issuer", "USERMGMT_JWT_ISSUER", "iss claim of access tokens.", str, "usermgmt"),
    Option("jwt_audience", "USERMGMT_JWT_AUDIENCE", "aud claim of access tokens.", str, "usermgmt"),
    Option(
        "access_token_ttl",
        "USERMGMT_ACCESS_TOKEN_TTL",
        "Access-token lifetime in seconds.",
        _positive_int,
        900,
    ),
    Option(
        "hmac_secret",
        "USERMGMT_HMAC_SECRET",
        "Shared secret (at least 32 bytes) that signs "
        "page tokens and keys idempotency fingerprints; the same on every instance.",
        secret=True,
    ),
    Option(
        "hmac_secret_file",
        "USERMGMT_HMAC_SECRET_FILE",
        "File holding that secret (one of "
        "the two is required unless embedded, where one is generated).",
    ),
    Option(
        "argon2_time_cost", "USERMGMT_ARGON2_TIME_COST", "Argon2id iterations.", _positive_int, 2
    ),
    Option(
        "argon2_memory_kib",
        "USERMGMT_ARGON2_MEMORY_KIB",
        "Argon2id memory in KiB.",
        _positive_int,
        19456,
    ),
    Option(
        "argon2_parallelism", "USERMGMT_ARGON2_PARALLELISM", "Argon2id lanes.", _positive_int, 1
    ),
    Option(
        "hash_workers",
        "USERMGMT_HASH_WORKERS",
        "Threads that hash passwords in each worker process (default: CPU count divided "
        "by USERMGMT_WORKERS, at least 1).",
        _positive_int,
    ),
    Option(
        "hash_max_pending",
        "USERMGMT_HASH_MAX_PENDING",
        "Password hashes running or queued "
        "at most; beyond that callers wait (default: 16 per worker).",
        _positive_int,
    ),
    Option(
        "hash_queue_timeout",
        "USERMGMT_HASH_QUEUE_TIMEOUT",
        "Seconds to wait for a hashing slot before answering UNAVAILABLE (SERVER_BUSY).",
        _non_negative_float,
        2.0,
    ),
    Option(
        "password_min_length",
        "USERMGMT_PASSWORD_MIN_LENGTH",
        "Minimum password length in "
        "characters (NIST SP 800-63B-4: 15 when the password is the only factor; at least 8).",
        _positive_int,
        15,
    ),
    Option(
        "require_email_verification",
        "USERMGMT_REQUIRE_EMAIL_VERIFICATION",
        "New accounts and e-mail changes must be confirmed with a code sent to the address.",
        _boolean,
        True,
    ),
    Option(
        "code_ttl",
        "USERMGMT_CODE_TTL",
        "Seconds a verification or reset code stays valid.",
        _positive_int,
        900,
    ),
    Option(
        "code_max_attempts",
        "USERMGMT_CODE_MAX_ATTEMPTS",
        "Wrong guesses a code survives.",
        _positive_int,
        5,
    ),
    Option(
        "resend_cooldown",
        "USERMGMT_RESEND_COOLDOWN",
        "Seconds before another code can be sent to the same account.",
        _non_negative_int,
        60,
    ),
    Option(
        "refresh_token_ttl",
        "USERMGMT_REFRESH_TOKEN_TTL",
        "Absolute lifetime of a session "
        "(refresh-token family) in seconds, however often it is refreshed.",
        _positive_int,
        30 * 24 * 3600,
    ),
    Option(
        "session_cache_seconds",
        "USERMGMT_SESSION_CACHE_SECONDS",
        "Seconds an instance caches "
        "a user's revocation time and state; revoked access tokens keep working at most this "
        "long (plus the rest of the second they were issued in).",
        _non_negative_float,
        5.0,
    ),
    Option(
        "lockout_threshold",
        "USERMGMT_LOCKOUT_THRESHOLD",
        "Failed sign-ins before the progressive back-off starts.",
        _positive_int,
        5,
    ),
    Option(
        "lockout_base_delay",
        "USERMGMT_LOCKOUT_BASE_DELAY",
        "Seconds of the first back-off; each further failure doubles it.",
        _non_negative_float,
        1.0,
    ),
    Option(
        "lockout_max_delay",
        "USERMGMT_LOCKOUT_MAX_DELAY",
        "Longest back-off in seconds.",
        _non_negative_float,
        900.0,
    ),
    Option(
        "lockout_hard_limit",
        "USERMGMT_LOCKOUT_HARD_LIMIT",
        "Failed sign-ins that lock the "
        "account until a password reset or an administrator's unlock.",
        _positive_int,
        100,
    ),
    Option(
        "rate_limit_per_minute",
        "USERMGMT_RATE_LIMIT_PER_MINUTE",
        "Calls per minute per "
        "client address and group (sign-in, registration, codes), per instance; 0 = off.",
        _non_negative_int,
        30,
    ),
    Option(
        "trusted_proxy_hops",
        "USERMGMT_TRUSTED_PROXY_HOPS",
        "Proxies in front of the server "
        "that append to x-forwarded-for (1 behind an ALB); 0 = use the TCP peer address.",
        _non_negative_int,
        0,
    ),
    Option(
        "sns_endpoint_url",
        "USERMGMT_SNS_ENDPOINT_URL",
        "Endpoint for SNS only (overrides AWS_ENDPOINT_URL for event publishing).",
    ),
    Option(
        "outbox_sweep_interval",
        "USERMGMT_OUTBOX_SWEEP_INTERVAL",
        "Seconds between outbox sweeps (publishing events the immediate relay could not).",
        _non_negative_float,
        5.0,
    ),
    Option(
        "outbox_grace",
        "USERMGMT_OUTBOX_GRACE",
        "Age in seconds before the sweeper takes an event over from the immediate relay.",
        _non_negative_float,
        10.0,
    ),
    Option(
        "notifier_from_address",
        "USERMGMT_NOTIFIER_FROM_ADDRESS",
        "Sender address of e-mails (embedded mode's in-process notifier).",
        str,
        "no-reply@usermgmt.local",
    ),
    Option(
        "topic_arn",
        "USERMGMT_TOPIC_ARN",
        "SNS topic that receives notifications (codes); embedded mode creates and uses its own.",
    ),
    Option(
        "workers",
        "USERMGMT_WORKERS",
        "Server processes sharing the listening port (SO_REUSEPORT) under one supervisor "
        "that restarts them; 1 = a single process, no supervisor (default: CPU count; "
        "embedded: 1).",
        _positive_int,
    ),
    Option(
        "max_connection_idle",
        "USERMGMT_MAX_CONNECTION_IDLE",
        "Seconds without RPCs after which the server closes a connection (GOAWAY); keep it "
        "above the load balancer's idle timeout (ALB: 60 s) so the balancer closes first; "
        "0 = never.",
        _off_or_at_least_one_second,
        75.0,
    ),
    Option(
        "max_connection_age",
        "USERMGMT_MAX_CONNECTION_AGE",
        "Seconds after which a connection is asked to reconnect (GOAWAY, ±10% jitter; "
        "in-flight RPCs get USERMGMT_SHUTDOWN_GRACE), which spreads long-lived clients "
        "over restarted workers and instances; 0 = never.",
        _off_or_at_least_one_second,
        0.0,
    ),
    Option(
        "keepalive_time",
        "USERMGMT_KEEPALIVE_TIME",
        "Seconds between the server's HTTP/2 PINGs on a connection, which check that the peer "
        "is still there.",
        _at_least_one_second,
        30.0,
    ),
    Option(
        "keepalive_timeout",
        "USERMGMT_KEEPALIVE_TIMEOUT",
        "Seconds to wait for the PING's acknowledgement before closing the connection.",
        _at_least_one_second,
        20.0,
    ),
    Option(
        "keepalive_min_ping_interval",
        "USERMGMT_KEEPALIVE_MIN_PING_INTERVAL",
        "Shortest interval in seconds between a client's keepalive PINGs while no data flows "
        "(also with no call in flight); a client pinging faster gets GOAWAY "
        "ENHANCE_YOUR_CALM (too_many_pings) after 2 strikes.",
        _at_least_one_second,
        10.0,
    ),
    Option(
        "max_concurrent_rpcs",
        "USERMGMT_MAX_CONCURRENT_RPCS",
        "RPCs served at once by each worker process; more are refused with RESOURCE_EXHAUSTED.",
        _positive_int,
        1000,
    ),
    Option("reflection", "USERMGMT_REFLECTION", "Serve gRPC server reflection.", _boolean, True),
    Option(
        "health_interval",
        "USERMGMT_HEALTH_INTERVAL",
        "Seconds between storage checks that drive health and the probe.",
        _non_negative_float,
        5.0,
    ),
    Option(
        "drain_seconds",
        "USERMGMT_DRAIN_SECONDS",
        "On SIGTERM/SIGINT, seconds to report NOT_SERVING before stopping (default 5, embedded 0).",
        _non_negative_float,
    ),
    Option(
        "shutdown_grace",
        "USERMGMT_SHUTDOWN_GRACE",
        "Seconds in-flight RPCs get to finish after draining.",
        _non_negative_float,
        10.0,
    ),
    Option(
        "bootstrap_admin_username",
        "USERMGMT_BOOTSTRAP_ADMIN_USERNAME",
        "Create this administrator at start-up if absent.",
    ),
    Option(
        "bootstrap_admin_password",
        "USERMGMT_BOOTSTRAP_ADMIN_PASSWORD",
        "Password of the bootstrap administrator.",
        secret=True,
    ),
    Option(
        "bootstrap_admin_email",
        "USERMGMT_BOOTSTRAP_ADMIN_EMAIL",
        "Optional e-mail of the bootstrap administrator.",
    ),
    Option("log_level", "USERMGMT_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR.", str.upper, "INFO"),
    Option("log_format", "USERMGMT_LOG_FORMAT", "json or text (default json, embedded text)."),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings of one server process."""

    embedded: bool
    listen_address: str
    table_name: str
    topic_name: str
    aws_region: str
    aws_endpoint_url: str | None
    aws_max_attempts: int
    aws_connect_timeout: float
    aws_read_timeout: float
    jwt_private_key: str | None
    jwt_private_key_file: str | None
    jwt_issuer: str
    jwt_audience: str
    access_token_ttl: int
    hmac_secret: bytes | None
    hmac_secret_file: str | None
    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int
    hash_workers: int
    hash_max_pending: int
    hash_queue_timeout: float
    password_min_length: int
    require_email_verification: bool
    code_ttl: int
    code_max_attempts: int
    resend_cooldown: int
    refresh_token_ttl: int
    session_cache_seconds: float
    lockout_threshold: int
    lockout_base_delay: float
    lockout_max_delay: float
    lockout_hard_limit: int
    rate_limit_per_minute: int
    trusted_proxy_hops: int
    topic_arn: str | None
    sns_endpoint_url: str | None
    outbox_sweep_interval: float
    outbox_grace: float
    notifier_from_address: str
    workers: int
    max_connection_idle: float
    max_connection_age: float
    keepalive_time: float
    keepalive_timeout: float
    keepalive_min_ping_interval: float
    max_concurrent_rpcs: int
    reflection: bool
    health_interval: float
    drain_seconds: float
    shutdown_grace: float
    bootstrap_admin_username: str | None
    bootstrap_admin_password: str | None
    bootstrap_admin_email: str | None
    log_level: str
    log_format: str

    def __repr__(self) -> str:
        shown = {
            field.name: "***"
            if _is_secret(field.name) and getattr(self, field.name)
            else getattr(self, field.name)
            for field in fields(self)
        }
        return f"Settings({shown})"


def _is_secret(name: str) -> bool:
    return any(option.secret for option in OPTIONS if option.name == name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per non-secret setting to ``parser`` (unset flags stay ``None``)."""
    for option in OPTIONS:
        if option.flag is None:
            continue
        # argparse expands %-placeholders in help text; the help is plain prose.
        help_text = f"{option.help} [env {option.env}]".replace("%", "%%")
        if option.parse is _boolean:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(option.flag, dest=option.name, default=None, help=help_text)


def load_settings(
    arguments: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    serving: bool = True,
) -> Settings:
    """Read, parse and check every setting; raises ``ConfigError`` naming what is wrong.

    ``serving=False`` (for create-resources) does not ask for the signing key and secret.
    """
    raw, problems = read_options(OPTIONS, arguments, environ)
    if problems:
        raise ConfigError("invalid settings:\n  " + "\n  ".join(problems))
    return _resolve(raw, serving)


def read_options(
    options: Sequence[Option],
    arguments: argparse.Namespace | None,
    environ: Mapping[str, str] | None,
) -> tuple[dict[str, Any], list[str]]:
    """Each option's value (flag, else environment, else default) and the parse problems."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for option in options:
        value = getattr(arguments, option.name, None) if arguments is not None else None
        source = option.flag
        if value is None:
            text = environ.get(option.env) or (
                environ.get(option.fallback_env) if option.fallback_env else None
            )
            value, source = (text or None), option.env
        if isinstance(value, str):
            try:
                value = option.parse(value)
            except ValueError as error:
                problems.append(f"{source}: {error}")
                continue
        raw[option.name] = option.default if value is None else value
    return raw, problems


def _resolve(raw: dict[str, Any], serving: bool) -> Settings:
    embedded = bool(raw["embedded"])
    if embedded:
        raw["table_name"] = raw["table_name"] or "usermgmt"
        raw["aws_region"] = raw["aws_region"] or "us-east-1"
    raw["listen_address"] = raw["listen_address"] or (
        EMBEDDED_LISTEN_ADDRESS if embedded else DEFAULT_LISTEN_ADDRESS
    )
    raw["drain_seconds"] = (
        raw["drain_seconds"] if raw["drain_seconds"] is not None else (0.0 if embedded else 5.0)
    )
    raw["log_format"] = (raw["log_format"] or ("text" if embedded else "json")).lower()
    cpus = os.cpu_count() or 1
    if raw["workers"] is None:
        raw["workers"] = 1 if embedded else cpus
    elif embedded and raw["workers"] > 1:
        raise ConfigError(
            "cannot start: embedded mode runs one process (its AWS emulator and data live in "
            "it); leave USERMGMT_WORKERS unset or set it to 1"
        )
    # Worker processes share the CPUs, so each hashes with its share of them.
    hash_workers = raw["hash_workers"] or max(1, cpus // raw["workers"])
    raw["hash_workers"] = hash_workers
    raw["hash_max_pending"] = raw["hash_max_pending"] or hash_workers * 16
    raw["hmac_secret"] = _read_secret(raw.pop("hmac_secret"), raw["hmac_secret_file"])
    _check(raw, embedded, serving)
    return Settings(**raw)


def _read_secret(value: str | None, path: str | None) -> bytes | None:
    if value:
        return value.encode("utf-8")
    if path:
        try:
            return Path(path).read_bytes().strip()
        except OSError as error:
            raise ConfigError(f"USERMGMT_HMAC_SECRET_FILE: cannot read {path}: {error}") from None
    return None


def _check(raw: dict[str, Any], embedded: bool, serving: bool) -> None:
    problems: list[str] = []
    if not embedded:
        required = {
            "table_name": "USERMGMT_TABLE_NAME (or --table-name)",
            "aws_region": "AWS_REGION (or --aws-region)",
        }
        problems += [f"{hint} is required" for name, hint in required.items() if not raw[name]]
    if not embedded and serving:
        if not (raw["jwt_private_key"] or raw["jwt_private_key_file"]):
            problems.append("USERMGMT_JWT_PRIVATE_KEY or USERMGMT_JWT_PRIVATE_KEY_FILE is required")
        if raw["hmac_secret"] is None:
            problems.append("USERMGMT_HMAC_SECRET or USERMGMT_HMAC_SECRET_FILE is required")
    if raw["hmac_secret"] is not None and len(raw["hmac_secret"]) < MIN_SECRET_BYTES:
        problems.append(f"USERMGMT_HMAC_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    if bool(raw["bootstrap_admin_username"]) != bool(raw["bootstrap_admin_password"]):
        problems.append(
            "USERMGMT_BOOTSTRAP_ADMIN_USERNAME and USERMGMT_BOOTSTRAP_ADMIN_PASSWORD go together"
        )
    if raw["password_min_length"] < 8:
        problems.append("USERMGMT_PASSWORD_MIN_LENGTH must be at least 8")
    if raw["log_format"] not in ("json", "text"):
        problems.append("USERMGMT_LOG_FORMAT must be json or text")
    if raw["log_level"] not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append("USERMGMT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    if problems:
        mode = "" if embedded else " (or run with --embedded for a local, in-memory server)"
        raise ConfigError("cannot start" + mode + ":\n  " + "\n  ".join(problems))
