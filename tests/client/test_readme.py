"""The README's client and CLI sections match the code: the retry policy shown is the one the
channel uses, and every command, exception and public name is mentioned."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import usermgmt
from usermgmt import RetryPolicy, UsermgmtError
from usermgmt.cli._app import build_parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    following = re.search(r"\n## ", README[start + len(title) + 2 :])
    end = start + len(title) + 2 + following.start() if following else len(README)
    return README[start:end]


def test_the_documented_retry_policy_is_the_default() -> None:
    section = _section("### Retry policy")
    document = re.search(r"```json\n(.*?)```", section, re.S)
    assert document, "the retry policy section shows the service config as JSON"
    assert json.loads(document.group(1)) == RetryPolicy().service_config()


def test_every_exception_is_documented() -> None:
    section = _section("## Client library")
    for name in usermgmt.__all__:
        value = getattr(usermgmt, name)
        if (
            isinstance(value, type)
            and issubclass(value, UsermgmtError)
            and value is not UsermgmtError
        ):
            assert f"`{name}`" in section, name


def test_every_command_is_documented() -> None:
    section = _section("## CLI")
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for command in subparsers.choices:
        assert f"| `{command}" in section or f", `{command}" in section, command
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 130 |"):
        assert code in section
