"""``usermgmt-notifier``: deliver the service's notification requests from SQS by e-mail and SMS."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError

from usermgmt_server.adapters.dynamodb.clients import AwsClients, open_aws_clients
from usermgmt_server.adapters.dynamodb.errors import error_code
from usermgmt_server.adapters.dynamodb.resources import table_is_reachable
from usermgmt_server.adapters.security.system import SystemClock
from usermgmt_server.config import ConfigError
from usermgmt_server.logging_setup import configure_logging
from usermgmt_server.notifier.markers import NotificationMarkers
from usermgmt_server.notifier.senders import Senders, SesEmailSender, SnsSmsSender
from usermgmt_server.notifier.settings import (
    NotifierSettings,
    add_arguments,
    load_notifier_settings,
)
from usermgmt_server.notifier.worker import NotifierWorker

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one flag per setting."""
    parser = argparse.ArgumentParser(
        prog="usermgmt-notifier",
        description="Deliver usermgmt notifications (codes, welcome messages) from an SQS queue "
        "by SES e-mail or SNS SMS. Every flag has an environment variable; flags win.",
    )
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``usermgmt-notifier`` command."""
    arguments = build_parser().parse_args(argv)
    try:
        settings = load_notifier_settings(arguments)
    except ConfigError as error:
        print(f"usermgmt-notifier: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    return asyncio.run(run(settings))


async def run(settings: NotifierSettings) -> int:
    """Check the queue and table, then deliver until SIGTERM or SIGINT (after the batch in hand)."""
    async with open_aws_clients(settings.aws(), messaging=True) as clients:
        problem = await _startup_problem(clients, settings)
        if problem:
            print(f"usermgmt-notifier: cannot start: {problem}", file=sys.stderr)
            return 1
        worker = NotifierWorker(
            clients.sqs,
            settings.queue_url,
            Senders(
                email=SesEmailSender(clients.sesv2, settings.from_address),
                sms=SnsSmsSender(clients.sns),
            ),
            NotificationMarkers(
                clients.dynamodb,
                settings.table_name,
                retention=timedelta(seconds=settings.marker_retention),
            ),
            SystemClock(),
            wait_seconds=settings.wait_seconds,
            batch=settings.batch_size,
            visibility_timeout=settings.visibility_timeout,
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
        print("usermgmt-notifier: delivering notifications", flush=True)
        await worker.run()
        outcomes = {outcome.value: count for outcome, count in worker.outcomes.items()}
        logger.info("notifier stopped", extra={"outcomes": outcomes})
        print("usermgmt-notifier: stopped", flush=True)
    return 0


async def _startup_problem(clients: AwsClients, settings: NotifierSettings) -> str | None:
    """Why the notifier cannot work (queue or table unreachable), or ``None``."""
    try:
        await clients.sqs.get_queue_attributes(
            QueueUrl=settings.queue_url, AttributeNames=["QueueArn"]
        )
    except (ClientError, BotoCoreError) as error:
        cause = error_code(error) if isinstance(error, ClientError) else type(error).__name__
        return f"queue {settings.queue_url} is not reachable ({cause})"
    if not await table_is_reachable(clients.dynamodb, settings.table_name):
        return f"table {settings.table_name} is not reachable"
    return None


if __name__ == "__main__":
    sys.exit(main())
