"""``python -m tests.bench`` (``make bench``): run the benchmark, write ``results.json`` and
``results.md`` into the output directory, and optionally the table into the README."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tests.bench.report import markdown, targets, update_readme
from tests.bench.runner import Bench, BenchSettings
from tests.bench.stack import FAKE_AWS

DEFAULTS = BenchSettings()


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (defaults: a run of a few minutes)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="Benchmark usermgmt-server against a local AWS emulator: throughput, "
        "latency and server CPU per RPC, compared with bounds measured in the same run.",
    )
    parser.add_argument("--out", type=Path, default=Path(".bench"), help="output directory")
    parser.add_argument("--readme", type=Path, help="write the table into this README")
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULTS.duration,
        help="seconds of load per phase (%(default)s)",
    )
    parser.add_argument(
        "--bound-duration",
        type=float,
        default=DEFAULTS.bound_duration,
        help="seconds per bound measurement (%(default)s)",
    )
    parser.add_argument(
        "--processes", type=int, default=DEFAULTS.processes, help="client processes (%(default)s)"
    )
    parser.add_argument(
        "--streams",
        type=int,
        default=DEFAULTS.streams,
        help="concurrent calls per client process (%(default)s)",
    )
    parser.add_argument(
        "--users", type=int, default=DEFAULTS.users, help="seeded accounts (%(default)s)"
    )
    parser.add_argument(
        "--login-streams",
        type=int,
        default=DEFAULTS.login_streams,
        help="Authenticate calls in flight under login load (%(default)s)",
    )
    parser.add_argument(
        "--hash-workers",
        type=int,
        default=DEFAULTS.hash_workers,
        help="hashing threads per worker process (%(default)s)",
    )
    parser.add_argument(
        "--load-tool",
        choices=("auto", "h2load", "python"),
        default=DEFAULTS.load_tool,
        help="load generator of the workers phase (%(default)s)",
    )
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="RPC",
        help="run this RPC's phase once more under py-spy (repeatable)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its results."""
    arguments = build_parser().parse_args(argv)
    settings = BenchSettings(
        duration=arguments.duration,
        bound_duration=arguments.bound_duration,
        processes=arguments.processes,
        streams=arguments.streams,
        users=arguments.users,
        login_streams=arguments.login_streams,
        hash_workers=arguments.hash_workers,
        load_tool=arguments.load_tool,
        profile=tuple(arguments.profile),
    )
    out: Path = arguments.out
    # The emulator accepts any credentials; these keep real ones from being used.
    os.environ.update(FAKE_AWS)
    results = Bench(settings, out).run()
    results["targets"] = targets(results)
    table = markdown(results)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(table)
    if arguments.readme is not None:
        update_readme(arguments.readme, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
