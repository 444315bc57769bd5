"""``usermgmt-notifier``: settings, start-up checks and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.notifier.support import FROM_ADDRESS, notification, sent_emails
from usermgmt_server.config import ConfigError
from usermgmt_server.domain.events import NOTIFY_WELCOME
from usermgmt_server.notifier.cli import main, run
from usermgmt_server.notifier.resources import PipelineInfo
from usermgmt_server.notifier.settings import NOTIFIER_OPTIONS, load_notifier_settings

COMPLETE = {
    "USERMGMT_NOTIFIER_QUEUE_URL": "http://127.0.0.1:1/123456789012/q",
    "USERMGMT_TABLE_NAME": "usermgmt",
    "USERMGMT_NOTIFIER_FROM_ADDRESS": "no-reply@example.com",
    "AWS_REGION": "eu-west-1",
}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No notifier setting in the environment."""
    for option in NOTIFIER_OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
        if option.fallback_env:
            monkeypatch.delenv(option.fallback_env, raising=False)
    return monkeypatch


def test_missing_settings_exit_2_naming_each_one(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 2

    error = capsys.readouterr().err
    assert error.startswith("usermgmt-notifier: cannot start:")
    for variable in COMPLETE:
        assert f"{variable} (or --" in error


def test_invalid_values_exit_2(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in COMPLETE.items():
        clean_environment.setenv(key, value)
    clean_environment.setenv("USERMGMT_NOTIFIER_WAIT_SECONDS", "25")

    assert main(["--batch-size", "11"]) == 2

    error = capsys.readouterr().err
    assert "USERMGMT_NOTIFIER_WAIT_SECONDS: must be at most 20" in error
    assert "--batch-size: must be at most 10" in error


def test_flags_win_over_the_environment() -> None:
    from usermgmt_server.notifier.cli import build_parser

    arguments = build_parser().parse_args(["--table-name", "from-flag", "--wait-seconds", "5"])
    settings = load_notifier_settings(arguments, {**COMPLETE, "USERMGMT_TABLE_NAME": "from-env"})

    assert settings.table_name == "from-flag"
    assert settings.wait_seconds == 5
    assert settings.visibility_timeout == 30 and settings.log_format == "json"
    assert settings.aws().region == "eu-west-1"


def test_the_region_falls_back_to_aws_default_region() -> None:
    environ = {key: value for key, value in COMPLETE.items() if key != "AWS_REGION"}
    settings = load_notifier_settings(None, {**environ, "AWS_DEFAULT_REGION": "us-west-2"})
    assert settings.aws_region == "us-west-2"
    with pytest.raises(ConfigError, match="AWS_REGION"):
        load_notifier_settings(None, environ)


async def test_an_unreachable_queue_stops_the_start(
    moto_endpoint: str, marker_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {
        **COMPLETE,
        "USERMGMT_NOTIFIER_QUEUE_URL": f"{moto_endpoint}/123456789012/no-such-queue",
        "USERMGMT_TABLE_NAME": marker_table,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "USERMGMT_AWS_MAX_ATTEMPTS": "1",
    }

    assert await run(load_notifier_settings(None, environ)) == 1

    assert "cannot start: queue" in capsys.readouterr().err


async def test_the_command_delivers_until_sigterm(
    moto_endpoint: str, marker_table: str, pipeline: PipelineInfo, publish
) -> None:
    command = Path(sys.executable).with_name("usermgmt-notifier")
    environ = {
        **os.environ,
        **COMPLETE,
        "USERMGMT_NOTIFIER_QUEUE_URL": pipeline.queue_url,
        "USERMGMT_TABLE_NAME": marker_table,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": "us-east-1",
        "USERMGMT_NOTIFIER_FROM_ADDRESS": FROM_ADDRESS,
    }
    process = await asyncio.create_subprocess_exec(
        str(command),
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=15)
        assert line.decode().strip() == "usermgmt-notifier: delivering notifications"
        event = notification(NOTIFY_WELCOME)
        await publish(event)
        deadline = time.monotonic() + 10
        while not sent_emails(str(event.data["recipient"])):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.3)  # back in a 20 s long poll
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
