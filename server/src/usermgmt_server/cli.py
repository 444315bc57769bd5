"""``usermgmt-server``: serve the API, or create the AWS resources it needs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from usermgmt_server.config import ConfigError, Settings, add_arguments, load_settings
from usermgmt_server.logging_setup import configure_logging
from usermgmt_server.workers.link import (
    SUPERVISOR_FD_FLAG,
    WORKER_INDEX_FLAG,
    SupervisorLink,
    WorkerRole,
)

logger = logging.getLogger(__name__)
# Seconds a worker may take beyond its drain period and grace before the supervisor kills it.
STOP_MARGIN_SECONDS = 15.0

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
    # Set by the supervisor on the worker processes it starts; not for people.
    parser.add_argument(WORKER_INDEX_FLAG, type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(SUPERVISOR_FD_FLAG, type=int, default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``usermgmt-server`` command."""
    argv = sys.argv[1:] if argv is None else argv
    arguments = build_parser().parse_args(argv)
    serving = arguments.command == "serve"
    try:
        settings = load_settings(arguments, serving=serving)
        role = _worker_role(arguments)
    except ConfigError as error:
        print(f"usermgmt-server: {error}", file=sys.stderr)
        return 2
    if not serving:
        configure_logging(settings.log_level, settings.log_format)
        return asyncio.run(create_resources_command(settings))
    if role is not None:
        configure_logging(
            settings.log_level, settings.log_format, {"pid": os.getpid(), "worker": role.index}
        )
        return asyncio.run(serve(settings, role))
    if settings.workers > 1:
        configure_logging(
            settings.log_level, settings.log_format, {"pid": os.getpid(), "role": "supervisor"}
        )
        return supervise(settings, argv)
    configure_logging(settings.log_level, settings.log_format)
    return asyncio.run(serve(settings))


def _worker_role(arguments: argparse.Namespace) -> WorkerRole | None:
    index, fd = arguments.worker_index, arguments.supervisor_fd
    if index is None and fd is None:
        return None
    if index is None or fd is None:
        raise ConfigError(f"{WORKER_INDEX_FLAG} and {SUPERVISOR_FD_FLAG} go together")
    return WorkerRole(index, fd)


def supervise(settings: Settings, argv: list[str]) -> int:
    """Run ``settings.workers`` worker processes on one port until SIGTERM or SIGINT."""
    from usermgmt_server.workers.ports import PortReservation
    from usermgmt_server.workers.supervisor import Supervisor

    try:
        reservation = PortReservation(settings.listen_address)
    except (OSError, ValueError) as error:
        print(
            f"usermgmt-server: cannot start: cannot listen on {settings.listen_address}: {error}",
            file=sys.stderr,
        )
        return 1
    with reservation:
        # Every worker binds the reserved port, also when the configured port was 0.
        command = [
            sys.executable,
            "-m",
            "usermgmt_server.cli",
            *argv,
            "--listen-address",
            reservation.address,
        ]
        supervisor = Supervisor(
            command,
            settings.workers,
            stop_timeout=settings.drain_seconds + settings.shutdown_grace + STOP_MARGIN_SECONDS,
            on_ready=lambda: print(
                f"usermgmt listening on {reservation.address} ({settings.workers} workers)",
                flush=True,
            ),
        )
        return asyncio.run(supervisor.run())


async def serve(settings: Settings, role: WorkerRole | None = None) -> int:
    """Run the server until SIGTERM or SIGINT, then drain and stop gracefully.

    As a supervised worker (``role``) it shares the port with the other workers, reports
    readiness to the supervisor instead of printing a banner, and also stops when the
    supervisor is gone.
    """
    from usermgmt_server.app import Application, StartupError
    from usermgmt_server.domain.errors import UsermgmtError

    application = Application(settings, share_port=role is not None)
    link = SupervisorLink(role.supervisor_fd) if role is not None else None
    try:
        endpoint = await application.start()
    except (StartupError, UsermgmtError) as error:
        print(f"usermgmt-server: cannot start: {error}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if link is not None:
        await link.open()
        try:
            await link.announce_ready()
        except ConnectionError:
            logger.warning("the supervisor is gone; stopping")
            stop.set()
        orphaned = asyncio.create_task(_stop_when_orphaned(link, stop))
    else:
        if settings.embedded:
            print(
                "embedded mode: DynamoDB and SNS are emulated in this process; "
                "data is kept in memory and lost when the server stops",
                flush=True,
            )
        print(f"usermgmt listening on {endpoint}", flush=True)
    await stop.wait()
    if link is None:
        print("usermgmt shutting down", flush=True)
    await application.stop()
    if link is not None:
        orphaned.cancel()
        link.close()
    return 0


async def _stop_when_orphaned(link: SupervisorLink, stop: asyncio.Event) -> None:
    await link.wait_until_supervisor_gone()
    if not stop.is_set():
        logger.warning("the supervisor is gone; stopping")
        stop.set()


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
