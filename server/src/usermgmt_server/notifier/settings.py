"""Settings of ``usermgmt-notifier``, declared like the server's (``config.Option``): one table,
environment variables with matching flags, flags win. The AWS, table and logging settings use
the server's variable names, so one environment can serve both processes."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

from usermgmt_server.adapters.dynamodb.clients import SQS_MAX_WAIT_SECONDS, AwsSettings
from usermgmt_server.config import (
    ConfigError,
    Option,
    _non_negative_float,
    _non_negative_int,
    _positive_int,
    read_options,
)

MAX_BATCH = 10


def _wait_seconds(text: str) -> int:
    value = _non_negative_int(text)
    if value > SQS_MAX_WAIT_SECONDS:
        raise ValueError(f"must be at most {SQS_MAX_WAIT_SECONDS}")
    return value


def _batch(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_BATCH:
        raise ValueError(f"must be at most {MAX_BATCH}")
    return value


NOTIFIER_OPTIONS: tuple[Option, ...] = (
    Option(
        "queue_url",
        "USERMGMT_NOTIFIER_QUEUE_URL",
        "SQS queue of notification requests (subscribed to the event topic). Required.",
    ),
    Option(
        "table_name",
        "USERMGMT_TABLE_NAME",
        "The service's DynamoDB table, which keeps the delivery markers. Required.",
    ),
    Option(
        "from_address",
        "USERMGMT_NOTIFIER_FROM_ADDRESS",
        "Sender address of e-mails (an SES-verified identity). Required.",
    ),
    Option("aws_region", "AWS_REGION", "AWS region. Required.", fallback_env="AWS_DEFAULT_REGION"),
    Option("aws_endpoint_url", "AWS_ENDPOINT_URL", "Custom AWS endpoint, e.g. a local emulator."),
    Option(
        "aws_max_attempts",
        "USERMGMT_AWS_MAX_ATTEMPTS",
        "Attempts per AWS call (botocore standard retry mode).",
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
        "Seconds to wait for an AWS response (SQS long polls get their wait on top).",
        _non_negative_float,
        5.0,
    ),
    Option(
        "wait_seconds",
        "USERMGMT_NOTIFIER_WAIT_SECONDS",
        f"Long-poll wait of each SQS receive, 0 to {SQS_MAX_WAIT_SECONDS} seconds.",
        _wait_seconds,
        20,
    ),
    Option(
        "batch_size",
        "USERMGMT_NOTIFIER_BATCH_SIZE",
        f"Messages received and delivered at once, 1 to {MAX_BATCH}.",
        _batch,
        MAX_BATCH,
    ),
    Option(
        "visibility_timeout",
        "USERMGMT_NOTIFIER_VISIBILITY_TIMEOUT",
        "Seconds a received message stays hidden (and a delivery claim lasts) before a retry.",
        _positive_int,
        30,
    ),
    Option(
        "marker_retention",
        "USERMGMT_NOTIFIER_MARKER_RETENTION",
        "Seconds a delivery marker is kept to recognise duplicates (DynamoDB TTL).",
        _positive_int,
        7 * 24 * 3600,
    ),
    Option("log_level", "USERMGMT_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR.", str.upper, "INFO"),
    Option("log_format", "USERMGMT_LOG_FORMAT", "json or text.", str.lower, "json"),
)

_REQUIRED = ("queue_url", "table_name", "from_address", "aws_region")


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    """Validated settings of one notifier process."""

    queue_url: str
    table_name: str
    from_address: str
    aws_region: str
    aws_endpoint_url: str | None
    aws_max_attempts: int
    aws_connect_timeout: float
    aws_read_timeout: float
    wait_seconds: int
    batch_size: int
    visibility_timeout: int
    marker_retention: int
    log_level: str
    log_format: str

    def aws(self) -> AwsSettings:
        """How the notifier reaches AWS."""
        return AwsSettings(
            region=self.aws_region,
            endpoint_url=self.aws_endpoint_url,
            max_attempts=self.aws_max_attempts,
            connect_timeout=self.aws_connect_timeout,
            read_timeout=self.aws_read_timeout,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting (unset flags stay ``None``)."""
    for option in NOTIFIER_OPTIONS:
        if option.flag is None:
            continue
        parser.add_argument(
            option.flag, dest=option.name, default=None, help=f"{option.help} [env {option.env}]"
        )


def load_notifier_settings(
    arguments: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> NotifierSettings:
    """Read, parse and check every setting; ``ConfigError`` lists everything that is wrong."""
    raw, problems = read_options(NOTIFIER_OPTIONS, arguments, environ)
    by_name = {option.name: option for option in NOTIFIER_OPTIONS}
    for name in _REQUIRED:
        if name in raw and not raw[name]:
            option = by_name[name]
            problems.append(f"{option.env} (or {option.flag}) is required")
    if raw.get("log_format") not in (None, "json", "text"):
        problems.append("USERMGMT_LOG_FORMAT must be json or text")
    if raw.get("log_level") not in (None, "DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append("USERMGMT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    if problems:
        raise ConfigError("cannot start:\n  " + "\n  ".join(problems))
    return NotifierSettings(**raw)


__all__ = ["NOTIFIER_OPTIONS", "NotifierSettings", "add_arguments", "load_notifier_settings"]
