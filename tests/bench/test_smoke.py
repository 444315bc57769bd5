"""A short run of the benchmark, as ``make bench`` starts it: every phase runs, and the JSON,
the markdown and the README table hold every figure. Timings are never judged here."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bench import h2load
from tests.bench.report import README_BEGIN, README_END
from tests.bench.runner import RPCS

REPOSITORY = Path(__file__).resolve().parents[2]
RPC_FIGURES = {
    "calls",
    "calls_per_second",
    "p50_ms",
    "p99_ms",
    "client_cpu_ms_per_call",
    "server_cpu_ms_per_call",
    "event_loop_cpu_ms_per_call",
    "emulator_cpu_ms_per_call",
    "other_programs_cores",
}
TINY = [
    "--duration", "0.5",
    "--bound-duration", "0.3",
    "--users", "6",
    "--streams", "2",
    "--login-streams", "3",
    "--profile", "GetUser",
]  # fmt: skip


def _numbers(value: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every number in ``value`` with where it is."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{path}[{index}]")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path, value


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    """One tiny run: (results.json, results.md, the README it wrote into)."""
    scratch = tmp_path_factory.mktemp("bench")
    readme = scratch / "README.md"
    readme.write_text(f"# Title\n\n{README_BEGIN}\nan older table\n{README_END}\n\nAfter.\n")
    completed = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--out", str(scratch / "out"), "--readme",
         str(readme), *TINY],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=280,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads((scratch / "out" / "results.json").read_text())
    return results, (scratch / "out" / "results.md").read_text(), readme.read_text()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_figure_is_present_and_positive(run: tuple[dict[str, Any], str, str]) -> None:
    results = run[0]
    assert set(results["rpcs"]) == set(RPCS)
    for rpc, figures in results["rpcs"].items():
        assert figures.keys() >= RPC_FIGURES, rpc
        assert figures["errors"] == {}, rpc
    assert results["rpcs"]["GetUser"]["beside_parts"].keys() == {
        "calls_per_second",
        "server_cpu_ms_per_call",
    }
    load = results["under_login_load"]
    for rpc in ("Authenticate", "GetUser", "GetJwks", "GetItem"):
        assert load[rpc]["errors"] == {}
    assert {rpc: f["errors"] for rpc, f in load["without_login_load"].items()} == {
        "GetUser": {},
        "GetJwks": {},
        "GetItem": {},
    }
    assert set(results["bounds"]) == {"argon2", "echo", "getitem", "tokens"}
    assert set(results["bounds"]["argon2"]) == {"before", "after"}
    assert set(results["bounds"]["tokens"]) == {
        "server_verify",
        "client_verify_first",
        "client_verify_repeated",
        "ecdsa_p256_verify",
    }
    workers = results["workers"]
    assert [len(workers[n]["peak_rss_bytes"]) for n in ("1 on 1 core", "1", "2")] == [1, 1, 2]
    measured = {key: results[key] for key in ("rpcs", "under_login_load", "bounds", "workers")}
    numbers = dict(_numbers(measured))
    assert len(numbers) > 80
    # What other programs took of the machine may well be nothing.
    assert all(v >= 0 for p, v in numbers.items() if p.endswith(".other_programs_cores"))
    not_positive = {
        path: value
        for path, value in numbers.items()
        if not value > 0 and not path.endswith(".other_programs_cores")
    }
    assert not_positive == {}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_targets_and_tables_are_written(run: tuple[dict[str, Any], str, str]) -> None:
    results, table, readme = run
    targets = results["targets"]
    assert len(targets) == 7
    for target in targets:
        assert target["value"] > 0 and target["limit"] > 0, target
        assert isinstance(target["met"], bool)
    (profiled,) = results["profiles"].values()
    assert profiled["samples"] > 0 and profiled["self"] and profiled["total"]
    assert all(0 < share <= 1 for _, share in profiled["self"] + profiled["total"])
    assert "Profile of the worker under GetUser alone" in table
    lines = table.splitlines()
    rpc_rows = [line for line in lines if line.split(" | ")[0].lstrip("| ") in RPCS]
    assert len(rpc_rows) == len(RPCS) + 1  # each RPC alone, then GetUser under login load
    target_rows = [line for line in lines if any(t["target"] in line for t in targets)]
    assert len(target_rows) == len(targets)
    assert all(line.count(" | ") == 4 for line in target_rows)
    assert readme == f"# Title\n\n{README_BEGIN}\n{table}{README_END}\n\nAfter.\n"


def test_h2load_summaries_are_read_and_checked_for_failed_calls() -> None:
    output = """finished in 6.02s, 3840.80 req/s, 814.98KB/s
requests: 19204 total, 19204 started, 19204 done, 19204 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 19204 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 3.98MB (4172700) total, 70.11KB (71793) headers (space savings 96.23%), 3.73MB (3906146) data
"""  # noqa: E501
    result = h2load.parse(output)
    assert result == h2load.H2loadResult(19204, 3840.80, 3906146)
    assert result.complete(response_bytes=3906146 // 19204 - 5)
    assert not result.complete(response_bytes=3906146 // 19204)
    short = output.replace("finished in 6.02s", "finished in 505.50ms")
    assert h2load.parse(short).calls_per_second == 3840.80
    with pytest.raises(ValueError, match="no summary"):
        h2load.parse("connect failed\n")
