"""The ``usermgmt`` command: global options, subcommand registration, errors and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TextIO

import grpc

from usermgmt._aws import AwsError, MissingExtra
from usermgmt._client import DEFAULT_TARGET, UsermgmtClient
from usermgmt._errors import InvalidRefreshToken, Unauthenticated, UsermgmtError
from usermgmt._fieldmask import UnknownField
from usermgmt._session import Session
from usermgmt._version import VERSION
from usermgmt.cli._credentials import CredentialsError, CredentialsFile, StoredSession

#: Exit codes (documented in ``usermgmt --help`` and the README).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SIGNED_OUT = 3
EXIT_INTERRUPTED = 130

#: Modules that add subcommands: each has ``register(commands: Commands) -> None``. A new
#: command group is a new module listed here.
COMMAND_MODULES = (
    "usermgmt.cli.account",
    "usermgmt.cli.users",
    "usermgmt.cli.bulk",
    "usermgmt.cli.health",
)

Handler = Callable[["Context", argparse.Namespace], Awaitable[int | None]]

_EPILOG = """\
The target comes from --target, else $USERMGMT_TARGET, else localhost:50051.
Sessions are kept per target in $XDG_CONFIG_HOME/usermgmt/credentials.json (mode 0600).

exit codes:
  0    success
  1    the service refused the request, could not be reached, or is not serving
  2    usage error (unknown option, missing argument, nothing to do)
  3    not signed in, or the session has ended: run `usermgmt login`
  130  interrupted
"""


class UsageError(Exception):
    """A command was called wrongly (exit code 2)."""


class SignedOut(Exception):
    """The command needs a session and there is none (exit code 3)."""


class Commands:
    """Where command modules add their subcommands."""

    def __init__(self, subparsers: argparse._SubParsersAction) -> None:
        self._subparsers = subparsers

    def add(
        self,
        name: str,
        handler: Handler,
        *,
        help: str,
        description: str | None = None,
        signed_in: bool = False,
    ) -> argparse.ArgumentParser:
        """Add subcommand ``name`` run by ``handler``; returns its parser for arguments.

        ``signed_in`` marks commands that use the stored session (``context.client(
        signed_in=True)``): when the service refuses it they exit with code 3.
        """
        parser = self._subparsers.add_parser(
            name,
            help=help,
            description=description or help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(handler=handler, signed_in=signed_in)
        return parser


@dataclass
class Context:
    """What a command needs: where the service is, the stored session, the streams."""

    target: str
    tls: bool | grpc.ChannelCredentials
    timeout: float
    credentials: CredentialsFile
    password_stdin: bool = False
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    @asynccontextmanager
    async def client(self, *, signed_in: bool = False) -> AsyncIterator[UsermgmtClient]:
        """A client of the target; with ``signed_in``, carrying the stored session, whose
        renewed tokens are written back to the credentials file."""
        session = None
        if signed_in:
            stored = self.credentials.load(self.target)
            if stored is None:
                raise SignedOut(f"not signed in to {self.target}: run `usermgmt login`")
            session = Session(
                stored.access_token,
                stored.refresh_token,
                on_tokens=self._store_renewed(stored),
                shared=self.credentials.shared(self.target),
            )
        async with UsermgmtClient(
            self.target, tls=self.tls, timeout=self.timeout, session=session
        ) as client:
            yield client

    def save_session(self, session: Session, username: str = "") -> None:
        """Store ``session`` as the target's signed-in session."""
        self.credentials.save(
            self.target,
            StoredSession(
                access_token=session.access_token,
                refresh_token=session.refresh_token,
                user_id=session.user_id or "",
                username=username,
            ),
        )

    def _store_renewed(self, stored: StoredSession) -> Callable[[Session], None]:
        def store(session: Session) -> None:
            self.save_session(session, stored.username)

        return store

    def read_password(self, prompt: str = "Password: ", *, confirm: bool = False) -> str:
        """A password from standard input (``--password-stdin``) or typed at the terminal
        without echo; never from an argument."""
        if self.password_stdin:
            password = self.stdin.readline().rstrip("\r\n")
            if not password:
                raise UsageError("--password-stdin: standard input had no password")
            return password
        if not self.stdin.isatty():
            raise UsageError("no terminal to ask for the password: pipe it with --password-stdin")
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat the password: ") != password:
            raise UsageError("the passwords do not match")
        return password

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question at the terminal (``False`` without one)."""
        if not self.stdin.isatty():
            return False
        self.stderr.write(f"{question} [y/N] ")
        self.stderr.flush()
        return self.stdin.readline().strip().lower() in ("y", "yes")


def build_parser() -> argparse.ArgumentParser:
    """The ``usermgmt`` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="usermgmt",
        description="Command-line client of the usermgmt service.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"usermgmt {VERSION}")
    parser.add_argument(
        "--target",
        default=os.environ.get("USERMGMT_TARGET") or DEFAULT_TARGET,
        help="host:port of the service (env USERMGMT_TARGET; default %(default)s)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        default=os.environ.get("USERMGMT_TLS", "").lower() in ("1", "true", "yes"),
        help="connect with TLS using the system's root certificates (env USERMGMT_TLS=1)",
    )
    parser.add_argument(
        "--ca-file", help="PEM file of the certificate authority to trust (implies --tls)"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        help="seconds each call may take (default %(default)s)",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    commands = Commands(subparsers)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``usermgmt`` with ``argv`` (default: the process arguments); the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        context = Context(
            target=args.target,
            tls=_credentials(args),
            timeout=args.timeout,
            credentials=CredentialsFile(),
            password_stdin=getattr(args, "password_stdin", False),
        )
        return asyncio.run(_run(args.handler, context, args)) or EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    except UsageError as error:
        parser.exit(EXIT_USAGE, f"usermgmt: error: {error}\n")
    except SignedOut as error:
        sys.stderr.write(f"usermgmt: {error}\n")
        return EXIT_SIGNED_OUT
    except UsermgmtError as error:
        if args.signed_in and _session_refused(error):
            hint = "the session has ended: run `usermgmt login`"
            sys.stderr.write(f"usermgmt: error: {describe(error)} ({hint})\n")
            return EXIT_SIGNED_OUT
        sys.stderr.write(f"usermgmt: error: {describe(error)}\n")
        return EXIT_ERROR
    except UnknownField as error:
        parser.exit(EXIT_USAGE, f"usermgmt: error: {error}\n")
    except (CredentialsError, OSError, AwsError, MissingExtra) as error:
        sys.stderr.write(f"usermgmt: error: {error}\n")
        return EXIT_ERROR


def describe(error: UsermgmtError) -> str:
    """One line for a failed call: the reason, then the field violations or the message."""
    return str(error).replace("\n", " ")


async def _run(handler: Handler, context: Context, args: argparse.Namespace) -> int | None:
    return await handler(context, args)


def _session_refused(error: UsermgmtError) -> bool:
    return type(error) in (Unauthenticated, InvalidRefreshToken)


def _credentials(args: argparse.Namespace) -> bool | grpc.ChannelCredentials:
    if args.ca_file:
        try:
            with open(args.ca_file, "rb") as stream:
                return grpc.ssl_channel_credentials(root_certificates=stream.read())
        except OSError as error:
            raise UsageError(f"--ca-file: {error.strerror}: {args.ca_file}") from None
    return bool(args.tls)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value
