"""Run the Ansible tools of ``deploy/ansible`` and read what they print."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "deploy" / "ansible"
ROLE_DIR = ANSIBLE_DIR / "roles" / "usermgmt"
BIN = Path(sys.executable).parent

_RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$", re.MULTILINE)
_EXPOSURE = re.compile(r"Overall exposure level for \S+: (?P<level>\d+(?:\.\d+)?)")


def ansible_environment(home: Path) -> dict[str, str]:
    """The environment for ansible commands: plain output, pipelining, state kept in ``home``."""
    return {
        **os.environ,
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PIPELINING": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_COLLECTIONS_PATH": "",
        "PY_COLORS": "0",
    }


def run(command: list[str], *, env: dict[str, str], cwd: Path = REPO, timeout: float = 600):
    """Run ``command`` to completion, capturing its output as text."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def play_recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP counters by host (``ok``, ``changed``, ``failed`` ...)."""
    recap = output.rpartition("PLAY RECAP")[2]
    return {
        match["host"]: {
            name: int(value)
            for name, value in (pair.split("=") for pair in match["counts"].split())
        }
        for match in _RECAP.finditer(recap)
    }


def recap_line(output: str) -> str:
    """The PLAY RECAP line of the last host, as printed."""
    recap = output.rpartition("PLAY RECAP")[2]
    return next(line.strip() for line in recap.splitlines() if _RECAP.match(line.strip()))


def exposure_level(analysis: str) -> float:
    """The overall exposure level that ``systemd-analyze security`` printed."""
    match = _EXPOSURE.search(analysis)
    assert match, f"no exposure level in:\n{analysis}"
    return float(match["level"])


def read_environment_file(path: Path) -> dict[str, str]:
    """Parse a systemd ``EnvironmentFile`` as the role writes it: ``NAME="value"`` lines."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, quoted = line.partition("=")
        assert quoted.startswith('"') and quoted.endswith('"'), line
        values[name] = re.sub(r"\\(.)", r"\1", quoted[1:-1])
    return values
