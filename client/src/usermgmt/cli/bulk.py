"""Bulk commands: ``import`` (a file, an S3 object or an SQS queue) and ``export``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from usermgmt._aws import Opened, client, describe, open_source
from usermgmt._bulk import ImportTally, import_rows
from usermgmt._queue_import import QueueImporter
from usermgmt._rows import (
    FORMATS,
    RowError,
    RowWriter,
    SourceRow,
    export_record,
    format_of,
    read_rows,
)
from usermgmt._users import MAX_IMPORT_ROWS
from usermgmt.cli._app import EXIT_ERROR, Commands, Context, UsageError
from usermgmt.cli._progress import Progress

_IMPORT_HELP = """\
Create accounts from a CSV or JSON Lines file ("-" for standard input), an S3 object
(s3://bucket/key) or, with --from-sqs, the messages of an SQS queue (one JSON row each).
Columns or keys: username, email, display_name, roles, email_verified, and password or
password_hash (bcrypt, argon2id, Django or passlib pbkdf2-sha256); a row with neither is an
invitation (a password-reset code is mailed). Accounts that exist are left alone, so the same
file can be imported again. The exit code is 1 when any row was not imported.
S3 and SQS need boto3 (pip install 'usermgmt-client[aws]'); AWS_ENDPOINT_URL is honoured."""


def register(commands: Commands) -> None:
    """Add the bulk commands."""
    importing = commands.add(
        "import",
        _import,
        help="create accounts from a file, an S3 object or an SQS queue (administrators)",
        description=_IMPORT_HELP,
        signed_in=True,
    )
    importing.add_argument("source", nargs="?", help="users.csv, users.jsonl, - or s3://b/key")
    importing.add_argument("--format", choices=FORMATS, help="default: from the extension")
    importing.add_argument(
        "--batch-size",
        type=_batch_size,
        default=500,
        help="rows per ImportUsers call (default %(default)s)",
    )
    importing.add_argument(
        "--parallel", type=_positive_int, default=2, help="calls at once (default %(default)s)"
    )
    importing.add_argument(
        "--call-timeout",
        type=float,
        default=600.0,
        help="seconds each ImportUsers call may take (default %(default)s)",
    )
    importing.add_argument("--json", action="store_true", help="print the summary as JSON")
    queue = importing.add_argument_group("queue mode")
    queue.add_argument("--from-sqs", metavar="QUEUE_URL", help="import the messages of a queue")
    queue.add_argument(
        "--wait-seconds",
        type=int,
        choices=range(21),
        metavar="0-20",
        default=20,
        help="long-poll time of each receive (default %(default)s)",
    )
    queue.add_argument(
        "--until-empty", action="store_true", help="stop when a receive finds no message"
    )

    exporting = commands.add(
        "export",
        _export,
        help="write every account as import rows (administrators)",
        description="Write every account (or those matching --filter) as JSON Lines or CSV "
        "rows that `usermgmt import` reads back: username, email, display_name, roles, "
        "email_verified. No password or hash is exported: imported elsewhere, each row is an "
        "invitation.",
        signed_in=True,
    )
    exporting.add_argument("--out", required=True, help='users.jsonl, users.csv or "-"')
    exporting.add_argument("--format", choices=FORMATS, help="default: from the extension")
    exporting.add_argument("--filter", default="", help='e.g. "state = USER_STATE_ACTIVE"')
    exporting.add_argument(
        "--page-size", type=int, default=500, help="users per ListUsers call (default 500)"
    )


async def _import(context: Context, args: argparse.Namespace) -> int | None:
    if args.from_sqs:
        if args.source:
            raise UsageError("give a source or --from-sqs, not both")
        return await _import_queue(context, args)
    if not args.source:
        raise UsageError("give a file, - or s3://bucket/key to import (or --from-sqs QUEUE_URL)")
    row_format = _format(args.format, args.source)
    started = time.monotonic()
    opened = await asyncio.to_thread(_open, args.source)
    label = f"import {args.source.rstrip('/').rpartition('/')[2]}"
    with opened.stream, Progress(context.stderr, label, opened.size) as bar:
        rows = await asyncio.to_thread(_rows, opened, row_format, args.source)
        async with context.client(signed_in=True) as connected:
            tally = await import_rows(
                connected.users,
                rows,
                batch_size=args.batch_size,
                parallel=args.parallel,
                timeout=args.call_timeout,
                position=lambda: opened.consumed,
                on_batch=bar.advance,
            )
    seconds = time.monotonic() - started
    _write_summary(context.stdout, args.source, tally, seconds, as_json=args.json)
    return EXIT_ERROR if tally.invalid or tally.failed else None


async def _import_queue(context: Context, args: argparse.Namespace) -> int | None:
    sqs = client("sqs")
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    def dead_lettered(message_id: str, reason: str, text: str) -> None:
        context.stderr.write(f"message {message_id}: {reason}: {text} (to the dead-letter queue)\n")
        context.stderr.flush()

    async with context.client(signed_in=True) as connected:
        importer = QueueImporter(
            connected.users,
            sqs,
            args.from_sqs,
            wait_seconds=args.wait_seconds,
            timeout=args.call_timeout,
            on_dead_letter=dead_lettered,
        )
        tally = await importer.run(stop, until_empty=args.until_empty)
    summary = {
        "queue": args.from_sqs,
        "created": tally.created,
        "exists": tally.exists,
        "dead_lettered": tally.dead_lettered,
        "left": tally.left,
    }
    if args.json:
        context.stdout.write(json.dumps(summary) + "\n")
    else:
        context.stdout.write(
            f"Imported from {args.from_sqs}: {tally.created} created, {tally.exists} existed, "
            f"{tally.dead_lettered} sent to the dead-letter queue, {tally.left} left for "
            "another delivery\n"
        )
    return None


async def _export(context: Context, args: argparse.Namespace) -> int | None:
    if not 1 <= args.page_size <= 500:
        raise UsageError("--page-size must be between 1 and 500")
    row_format = _format(args.format, args.out)
    count = 0
    async with context.client(signed_in=True) as connected:
        pager = connected.users.list(filter=args.filter, page_size=args.page_size)
        with (
            _output(args.out, context.stdout) as stream,
            Progress(context.stderr, f"export {args.out}", None) as bar,
        ):
            writer = RowWriter(stream, row_format)
            async for page in pager.pages():
                for user in page.users:
                    writer.write(export_record(user))
                count += len(page.users)
                bar.advance(len(page.users), 0)
    context.stderr.write(f"Exported {count} users to {args.out}.\n")
    return None


def _format(given: str | None, name: str) -> str:
    """The ``--format`` given, else the one of the name's extension (JSON Lines for "-")."""
    if given:
        return given
    if name == "-":
        return "jsonl"
    try:
        return format_of(name)
    except RowError as error:
        raise UsageError(str(error)) from None


def _open(source: str) -> Opened:
    try:
        return open_source(source)
    except FileNotFoundError:
        raise UsageError(f"no such file: {source}") from None


def _rows(opened: Opened, row_format: str, source: str) -> Iterator[SourceRow]:
    text = io.TextIOWrapper(opened.stream, encoding="utf-8-sig", newline="")
    try:
        return _reading(read_rows(text, row_format), source)
    except RowError as error:
        raise UsageError(f"{source}: {error}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not UTF-8 text") from None


def _reading(rows: Iterator[SourceRow], source: str) -> Iterator[SourceRow]:
    """``rows``, with failures of the source (a broken S3 download, bytes that are not UTF-8)
    turned into one-line errors."""
    try:
        yield from rows
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not UTF-8 text") from None
    except Exception as error:
        if type(error).__module__.startswith(("botocore", "urllib3")):
            raise describe(source, error) from error
        raise


@contextlib.contextmanager
def _output(out: str, stdout: TextIO) -> Iterator[TextIO]:
    """``out`` for writing (stdout for "-"): written under a temporary name and renamed when
    complete, so a failed export never leaves a file that looks whole."""
    if out == "-":
        yield stdout
        return
    target = Path(out)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            yield stream
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _write_summary(
    stream: TextIO, source: str, tally: ImportTally, seconds: float, *, as_json: bool
) -> None:
    if as_json:
        document = {
            "source": source,
            "rows": tally.rows,
            "created": tally.created,
            "exists": tally.exists,
            "invalid": tally.invalid,
            "failed": tally.failed,
            "seconds": round(seconds, 3),
            "problems": [
                {
                    "line": p.line,
                    "outcome": p.outcome,
                    "reason": p.reason,
                    "message": p.message,
                }
                for p in sorted(tally.problems, key=lambda p: p.line)
            ],
        }
        stream.write(json.dumps(document, ensure_ascii=False) + "\n")
        return
    stream.write(
        f"Imported {source}: {tally.created} created, {tally.exists} existed, "
        f"{tally.invalid} invalid, {tally.failed} failed ({tally.rows} rows in {seconds:.1f} s)\n"
    )
    for problem in sorted(tally.problems, key=lambda p: p.line):
        label = "" if problem.outcome == "invalid" else "failed, send again: "
        stream.write(f"line {problem.line}: {label}{problem.reason}: {problem.message}\n")


def _batch_size(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_IMPORT_ROWS:
        raise argparse.ArgumentTypeError(f"at most {MAX_IMPORT_ROWS}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
