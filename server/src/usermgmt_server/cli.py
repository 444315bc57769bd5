"""``usermgmt-server``: serve the API, or create the AWS resources it needs."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from usermgmt_server.config import ConfigError, Settings, add_arguments, load_settings
from usermgmt_server.logging_setup import configure_logging

COMMANDS = ("serve", "create-resources")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: an optional command and one flag per setting."""
    parser = argparse.ArgumentParser(
        prog="usermgmt-server",
        description="usermgmt gRPC user-management service. Every flag has an environment "
        "variable; flags win. Secrets are read from the environment only.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=COMMANDS,
        default="serve",
        help="serve (default): run the gRPC server; create-resources: create the DynamoDB "
        "table and SNS topic (for environments not managed by Terraform)",
    )
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``usermgmt-server`` command."""
    arguments = build_parser().parse_args(argv)
    serving = arguments.command == "serve"
    try:
        settings = load_settings(arguments, serving=serving)
    except ConfigError as error:
        print(f"usermgmt-server: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if serving:
        return asyncio.run(serve(settings))
    return asyncio.run(create_resources_command(settings))


async def serve(settings: Settings) -> int:
    """Run the server until SIGTERM or SIGINT, then drain and stop gracefully."""
    from usermgmt_server.app import Application, StartupError
    from usermgmt_server.domain.errors import UsermgmtError

    application = Application(settings)
    try:
        endpoint = await application.start()
    except (StartupError, UsermgmtError) as error:
        print(f"usermgmt-server: cannot start: {error}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if settings.embedded:
        print(
            "embedded mode: DynamoDB and SNS are emulated in this process; "
            "data is kept in memory and lost when the server stops",
            flush=True,
        )
    print(f"usermgmt listening on {endpoint}", flush=True)
    await stop.wait()
    print("usermgmt shutting down", flush=True)
    await application.stop()
    return 0


async def create_resources_command(settings: Settings) -> int:
    """Create the table (with TTL) and the topic, idempotently, and print what exists."""
    from usermgmt_server.adapters.dynamodb.clients import open_aws_clients
    from usermgmt_server.adapters.dynamodb.resources import create_resources
    from usermgmt_server.app import aws_settings
    from usermgmt_server.domain.errors import StorageUnavailable

    if settings.embedded:
        print(
            "usermgmt-server: create-resources needs a real endpoint, not --embedded",
            file=sys.stderr,
        )
        return 2
    try:
        async with open_aws_clients(aws_settings(settings)) as clients:
            info = await create_resources(clients, settings.table_name, settings.topic_name)
    except StorageUnavailable as error:
        print(f"usermgmt-server: {error}", file=sys.stderr)
        return 1
    print(f"table {settings.table_name}: ready")
    print(f"topic {settings.topic_name}: {info.topic_arn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
