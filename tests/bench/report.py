"""The targets, judged from one run's figures, and the markdown tables that show them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"
MIB = 1024 * 1024


def _mean(*values: float) -> float:
    return sum(values) / len(values)


def argon2_bound(results: dict[str, Any]) -> dict[str, float]:
    """The Argon2 bound: the mean of the measurements before and after Authenticate."""
    runs = results["bounds"]["argon2"]
    return {
        "verifies_per_second": _mean(*(run["verifies_per_second"] for run in runs.values())),
        "cpu_ms_per_verify": _mean(*(run["cpu_ms_per_verify"] for run in runs.values())),
    }


def getuser_parts(results: dict[str, Any]) -> dict[str, float]:
    """CPU milliseconds of the parts a GetUser call is made of."""
    bounds = results["bounds"]
    return {
        "echo": bounds["echo"]["server_cpu_ms_per_call"],
        "getitem": bounds["getitem"]["cpu_ms_per_call"],
        "token": bounds["tokens"]["server_verify"]["cpu_us_per_call"] / 1000,
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value, its limit and whether it was met."""
    rpcs, bounds = results["rpcs"], results["bounds"]
    argon2 = argon2_bound(results)
    authenticate = rpcs["Authenticate"]
    cpu_share = argon2["cpu_ms_per_verify"] / authenticate["server_cpu_ms_per_call"]
    measured_share = authenticate["calls_per_second"] / argon2["verifies_per_second"]
    parts = getuser_parts(results)
    beside = rpcs["GetUser"]["beside_parts"]
    getuser_ratio = beside["server_cpu_ms_per_call"] / sum(parts.values())
    under_load = results["under_login_load"]["GetUser"]["p99_ms"]
    quiet_p99 = results["under_login_load"]["without_login_load"]["GetUser"]["p99_ms"]
    workers = results["workers"]
    scaling = workers["2"]["calls_per_second"] / workers["1 on 1 core"]["calls_per_second"]
    unconfined = workers["2"]["calls_per_second"] / workers["1"]["calls_per_second"]
    tokens = bounds["tokens"]
    repeated = tokens["client_verify_repeated"]["per_cpu_second"]
    first = tokens["client_verify_first"]["per_cpu_second"]
    return [
        {
            "target": "Authenticate >= 95 % of the Argon2 bound (from CPU per call)",
            "value": cpu_share,
            "limit": 0.95,
            "unit": "%",
            "met": cpu_share >= 0.95,
            "detail": f"{argon2['cpu_ms_per_verify']:.1f} ms per verify / "
            f"{authenticate['server_cpu_ms_per_call']:.1f} ms server CPU per Authenticate "
            f"(hashing thread {authenticate['hashing_threads_cpu_ms_per_call']:.1f}, event "
            f"loop {authenticate['event_loop_cpu_ms_per_call']:.1f})",
        },
        {
            "target": "Authenticate >= 95 % of the Argon2 bound (calls/s here)",
            "value": measured_share,
            "limit": 0.95,
            "unit": "%",
            "met": measured_share >= 0.95,
            "detail": f"{authenticate['calls_per_second']:.1f}/s / "
            f"{argon2['verifies_per_second']:.1f} verifies/s; the emulator spent "
            f"{authenticate['emulator_cpu_ms_per_call']:.1f} ms CPU per call",
        },
        {
            "target": "GetUser CPU <= 1.15 x the sum of its parts",
            "value": getuser_ratio,
            "limit": 1.15,
            "unit": "x",
            "met": getuser_ratio <= 1.15,
            "detail": f"{beside['server_cpu_ms_per_call']:.3f} ms / "
            f"({parts['echo']:.3f} echo + {parts['getitem']:.3f} GetItem + "
            f"{parts['token']:.3f} token) ms, side by side at "
            f"{beside['calls_per_second']:.0f} calls/s each",
        },
        {
            "target": "GetUser p99 <= 20 ms under login load",
            "value": under_load,
            "limit": 20.0,
            "unit": "ms",
            "met": under_load <= 20.0,
            "detail": f"without login load {quiet_p99:.1f} ms; the emulator's own GetItem p99 "
            f"{results['under_login_load']['GetItem']['p99_ms']:.1f} ms; wrong-password "
            "sign-ins at "
            f"{results['under_login_load']['Authenticate']['calls_per_second']:.1f}/s, "
            f"hashing threads busy {results['under_login_load']['hashing_threads_busy']:.0%}",
        },
        {
            "target": "2 workers >= 1.8 x 1 (GetJwks, 1 worker on 1 core)",
            "value": scaling,
            "limit": 1.8,
            "unit": "x",
            "met": scaling >= 1.8,
            "detail": f"{workers['2']['calls_per_second']:.0f}/s / "
            f"{workers['1 on 1 core']['calls_per_second']:.0f}/s; against 1 worker free to use "
            f"both cores: {unconfined:.2f}x",
        },
        {
            "target": "Local token verification >= 20,000/s per core (token seen before)",
            "value": repeated,
            "limit": 20000.0,
            "unit": "/s",
            "met": repeated >= 20000,
            "detail": "usermgmt.verify.TokenVerifier, the same token again",
        },
        {
            "target": "Local token verification >= 20,000/s per core (first sight)",
            "value": first,
            "limit": 20000.0,
            "unit": "/s",
            "met": first >= 20000,
            "detail": f"ECDSA P-256 verify alone: "
            f"{tokens['ecdsa_p256_verify']['per_cpu_second']:,.0f}/s per core",
        },
    ]


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The run's tables: per RPC, bounds, login load, workers, targets."""
    machine, settings, server = results["machine"], results["settings"], results["server"]
    lines = [
        f"Run of {machine['started']} on {machine['cpus']} x {machine['cpu_model']}, "
        f"Python {machine['python']}, {machine['seconds']:.0f} s; load average "
        f"{machine['load_average_before']:.2f} before, {machine['load_average_after']:.2f} "
        f"after. Argon2id m={server['argon2_memory_kib']} KiB t={server['argon2_time_cost']} "
        f"p={server['argon2_parallelism']}, {settings['hash_workers']} hashing thread(s) per "
        f"worker; {settings['processes']} client processes x {settings['streams']} streams, "
        f"{settings['duration']:g} s per phase.",
        "",
    ]
    rows = []
    for rpc, figures in results["rpcs"].items():
        rows.append(
            [
                rpc,
                f"{figures['calls_per_second']:.1f}",
                _ms(figures["p50_ms"]),
                _ms(figures["p99_ms"]),
                f"{figures['server_cpu_ms_per_call']:.2f}",
                f"{figures['event_loop_cpu_ms_per_call']:.2f}",
                f"{figures['emulator_cpu_ms_per_call']:.2f}",
                f"{figures['other_programs_cores']:.2f}",
                f"{figures['calls']}",
                f"{sum(figures['errors'].values())}",
            ]
        )
    header = [
        "RPC (1 worker)",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "server CPU ms/call",
        "of it event loop",
        "emulator CPU ms/call",
        "other programs, cores",
        "calls",
        "errors",
    ]
    lines += _table(header, rows)
    hashing = ", ".join(
        f"{rpc} {figures['hashing_threads_cpu_ms_per_call']:.1f} ms"
        for rpc, figures in results["rpcs"].items()
        if "hashing_threads_cpu_ms_per_call" in figures
    )
    lines += [
        "",
        f"Of the server CPU, the hashing threads took {hashing} per call; the rest is the "
        "event loop's and gRPC's threads. Peak RSS of the worker: "
        f"{results['single_worker_peak_rss_bytes'] / MIB:.0f} MiB.",
        "",
    ]
    bounds = results["bounds"]
    argon2 = bounds["argon2"]
    tokens = bounds["tokens"]
    lines += _table(
        ["Bound (same run)", "figure"],
        [
            [
                f"Argon2id verify, {settings['hash_workers']} thread(s), before / after "
                "Authenticate",
                f"{argon2['before']['verifies_per_second']:.1f}/s / "
                f"{argon2['after']['verifies_per_second']:.1f}/s, "
                f"{argon2_bound(results)['cpu_ms_per_verify']:.1f} ms CPU each",
            ],
            [
                "Bare grpc.aio echo server (GetUser's messages, beside GetUser)",
                f"{bounds['echo']['server_cpu_ms_per_call']:.3f} ms CPU per call",
            ],
            [
                "aioboto3 GetItem (the emulator's CPU excluded), beside GetUser",
                f"{bounds['getitem']['cpu_ms_per_call']:.3f} ms CPU per call",
            ],
            [
                "Access-token check in the server",
                f"{tokens['server_verify']['cpu_us_per_call']:.0f} µs CPU",
            ],
            [
                "usermgmt.verify: token seen before / first sight",
                f"{tokens['client_verify_repeated']['per_cpu_second']:,.0f}/s / "
                f"{tokens['client_verify_first']['per_cpu_second']:,.0f}/s per core",
            ],
            [
                "ECDSA P-256 verify alone (OpenSSL)",
                f"{tokens['ecdsa_p256_verify']['per_cpu_second']:,.0f}/s per core",
            ],
        ],
    )
    load = results["under_login_load"]
    quiet = load["without_login_load"]
    lines += [""]
    rows = [
        [
            label,
            f"{figures['calls_per_second']:.1f}",
            _ms(figures["p50_ms"]),
            _ms(figures["p99_ms"]),
            f"{sum(figures['errors'].values())}",
        ]
        for label, figures in (
            ("Authenticate, wrong password", load["Authenticate"]),
            ("GetUser", load["GetUser"]),
            ("GetJwks", load["GetJwks"]),
            ("GetItem straight to the emulator", load["GetItem"]),
            ("GetUser, without login load", quiet["GetUser"]),
            ("GetJwks, without login load", quiet["GetJwks"]),
            ("GetItem straight to the emulator, without login load", quiet["GetItem"]),
        )
    ]
    lines += _table(["Login load (1 worker)", "calls/s", "p50 ms", "p99 ms", "errors"], rows)
    lines += [
        "",
        f"GetUser, GetJwks and GetItem were each asked {load['probe_rate_asked']:g} calls/s. "
        "Hashing "
        f"threads busy {load['hashing_threads_busy']:.0%} of the time; the emulator used "
        f"{load['emulator_cores_used']:.2f} cores, other programs on the machine "
        f"{load['other_programs_cores']:.2f}.",
        "",
    ]
    lines += _table(
        [
            "Worker processes (GetJwks)",
            "calls/s",
            "server CPU ms/call",
            "server cores used",
            "load generator CPU ms/call",
            "other programs, cores",
            "peak RSS per worker MiB",
        ],
        [
            [
                f"{figures['workers']} on {figures['server_cpus']} core(s)",
                f"{figures['calls_per_second']:.0f}",
                f"{figures['server_cpu_ms_per_call']:.3f}",
                f"{figures['server_cores_used']:.2f}",
                f"{figures['client_cpu_ms_per_call']:.3f} ({figures['load_tool']})",
                f"{figures['other_programs_cores']:.2f}",
                " / ".join(f"{rss / MIB:.0f}" for rss in figures["peak_rss_bytes"]),
            ]
            for figures in results["workers"].values()
        ],
    )
    lines += [""]
    lines += _table(
        ["Target", "measured", "limit", "met", "from"],
        [
            [
                target["target"],
                _value(target["value"], target["unit"]),
                _value(target["limit"], target["unit"]),
                "yes" if target["met"] else "**no**",
                target["detail"],
            ]
            for target in results["targets"]
        ],
    )
    for rpc, found in results.get("profiles", {}).items():
        lines += [
            "",
            f"Profile of the worker under {rpc} alone (py-spy, {found['samples']} samples):",
            "",
        ]
        rows = [
            [frame.replace("|", "/"), f"{share:.1%}", total.replace("|", "/"), f"{total_share:.1%}"]
            for (frame, share), (total, total_share) in zip(
                found["self"], found["total"], strict=False
            )
        ]
        lines += _table(["self", "share", "total (frame anywhere in the stack)", "share"], rows)
    return "\n".join(lines) + "\n"


def _value(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0%}"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:.1f} ms"


def update_readme(path: Path, table: str) -> None:
    """Replace the text between the benchmark markers of ``path`` with ``table``."""
    text = path.read_text()
    pattern = re.compile(re.escape(README_BEGIN) + r".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{path} has no {README_BEGIN} … {README_END} section")
    replacement = f"{README_BEGIN}\n{table}{README_END}"
    path.write_text(pattern.sub(lambda _: replacement, text, count=1))
