"""Worker-process and connection settings (config.py, grpc_options.py): defaults, the embedded
single-process rule, the CPU share of each worker, range checks, and the gRPC arguments built
from them."""

from __future__ import annotations

import os

import pytest

from usermgmt_server.config import ConfigError, Settings, load_settings
from usermgmt_server.grpc_options import MESSAGE_LIMIT_BYTES, server_options

SERVER = {"USERMGMT_TABLE_NAME": "usermgmt", "AWS_REGION": "us-east-1"}
EMBEDDED = {"USERMGMT_EMBEDDED": "true"}


def settings(**environ: str) -> Settings:
    base = EMBEDDED if environ.get("USERMGMT_EMBEDDED") else SERVER
    return load_settings(environ={**base, **environ}, serving=False)


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)


@pytest.mark.usefixtures("eight_cpus")
def test_workers_default_to_the_cpu_count_and_share_the_cpus_for_hashing() -> None:
    defaults = settings()
    assert defaults.workers == 8
    assert defaults.hash_workers == 1 and defaults.hash_max_pending == 16
    two = settings(USERMGMT_WORKERS="2")
    assert two.workers == 2 and two.hash_workers == 4 and two.hash_max_pending == 64
    single = settings(USERMGMT_WORKERS="1")
    assert single.hash_workers == 8
    explicit = settings(USERMGMT_WORKERS="2", USERMGMT_HASH_WORKERS="3")
    assert explicit.hash_workers == 3


@pytest.mark.usefixtures("eight_cpus")
def test_more_workers_than_cpus_still_hash_with_one_thread_each() -> None:
    assert settings(USERMGMT_WORKERS="32").hash_workers == 1


@pytest.mark.usefixtures("eight_cpus")
def test_embedded_mode_runs_one_process() -> None:
    assert settings(USERMGMT_EMBEDDED="true").workers == 1
    assert settings(USERMGMT_EMBEDDED="true", USERMGMT_WORKERS="1").workers == 1
    with pytest.raises(ConfigError, match="embedded mode runs one process") as raised:
        settings(USERMGMT_EMBEDDED="true", USERMGMT_WORKERS="2")
    assert "USERMGMT_WORKERS" in str(raised.value)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_invalid_worker_counts_are_named(value: str) -> None:
    with pytest.raises(ConfigError, match="USERMGMT_WORKERS"):
        settings(USERMGMT_WORKERS=value)


def test_workers_flag_wins_over_the_environment() -> None:
    from usermgmt_server.cli import build_parser

    arguments = build_parser().parse_args(["--workers", "3"])
    loaded = load_settings(arguments, environ={**SERVER, "USERMGMT_WORKERS": "5"}, serving=False)
    assert loaded.workers == 3


def test_connection_defaults_fit_an_alb_in_front() -> None:
    loaded = settings()
    # The ALB (idle timeout 60 s, PINGs do not count) must be the side that closes idle
    # connections, or it may send a request on a connection the server is closing.
    assert loaded.max_connection_idle > 60
    assert loaded.max_connection_age == 0
    assert loaded.keepalive_time == 30 and loaded.keepalive_timeout == 20
    assert loaded.keepalive_min_ping_interval == 10


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("USERMGMT_MAX_CONNECTION_IDLE", "0", 0.0),
        ("USERMGMT_MAX_CONNECTION_IDLE", "120", 120.0),
        ("USERMGMT_MAX_CONNECTION_AGE", "1", 1.0),
        ("USERMGMT_MAX_CONNECTION_AGE", "1800.5", 1800.5),
        ("USERMGMT_KEEPALIVE_TIME", "1", 1.0),
        ("USERMGMT_KEEPALIVE_TIMEOUT", "2000000", 2_000_000.0),
        ("USERMGMT_KEEPALIVE_MIN_PING_INTERVAL", "300", 300.0),
    ],
)
def test_valid_durations_are_read(variable: str, value: str, expected: float) -> None:
    name = variable.removeprefix("USERMGMT_").lower()
    assert getattr(settings(**{variable: value}), name) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("USERMGMT_MAX_CONNECTION_IDLE", "0.5"),
        ("USERMGMT_MAX_CONNECTION_IDLE", "-75"),
        ("USERMGMT_MAX_CONNECTION_IDLE", "nan"),
        ("USERMGMT_MAX_CONNECTION_AGE", "inf"),
        ("USERMGMT_MAX_CONNECTION_AGE", "2000001"),
        ("USERMGMT_KEEPALIVE_TIME", "0"),
        ("USERMGMT_KEEPALIVE_TIMEOUT", "0.1"),
        ("USERMGMT_KEEPALIVE_MIN_PING_INTERVAL", "0"),
        ("USERMGMT_KEEPALIVE_MIN_PING_INTERVAL", "soon"),
    ],
)
def test_invalid_durations_are_named(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        settings(**{variable: value})


def test_grpc_arguments_follow_the_settings() -> None:
    options = dict(
        server_options(
            settings(
                USERMGMT_MAX_CONNECTION_IDLE="75",
                USERMGMT_KEEPALIVE_TIME="30",
                USERMGMT_KEEPALIVE_TIMEOUT="20",
                USERMGMT_KEEPALIVE_MIN_PING_INTERVAL="10.5",
            )
        )
    )
    assert options == {
        "grpc.so_reuseport": 0,
        "grpc.max_receive_message_length": MESSAGE_LIMIT_BYTES,
        "grpc.max_send_message_length": MESSAGE_LIMIT_BYTES,
        "grpc.keepalive_time_ms": 30_000,
        "grpc.keepalive_timeout_ms": 20_000,
        "grpc.http2.max_pings_without_data": 0,
        "grpc.keepalive_permit_without_calls": 1,
        "grpc.http2.min_ping_interval_without_data_ms": 10_500,
        "grpc.http2.max_ping_strikes": 2,
        "grpc.max_connection_idle_ms": 75_000,
    }


def test_connection_age_brings_its_grace_and_idle_zero_is_left_out() -> None:
    options = dict(
        server_options(
            settings(
                USERMGMT_MAX_CONNECTION_IDLE="0",
                USERMGMT_MAX_CONNECTION_AGE="600",
                USERMGMT_SHUTDOWN_GRACE="7",
            ),
            share_port=True,
        )
    )
    assert "grpc.max_connection_idle_ms" not in options
    assert options["grpc.max_connection_age_ms"] == 600_000
    assert options["grpc.max_connection_age_grace_ms"] == 7_000
    assert options["grpc.so_reuseport"] == 1
