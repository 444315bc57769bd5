"""Both commands print their help: every setting's help text goes through argparse's
%-formatting, so prose such as "±10% jitter" must reach the reader unchanged."""

from __future__ import annotations

import argparse

import pytest

from usermgmt_server.cli import build_parser as server_parser
from usermgmt_server.config import OPTIONS
from usermgmt_server.notifier.cli import build_parser as notifier_parser


@pytest.mark.parametrize("build_parser", [server_parser, notifier_parser])
def test_help_renders_every_setting(build_parser: object) -> None:
    assert callable(build_parser)
    parser: argparse.ArgumentParser = build_parser()
    text = " ".join(parser.format_help().split())
    for option in OPTIONS:
        if option.flag is not None and option.flag in text:
            assert f"[env {option.env}]" in text


def test_percent_signs_in_help_are_shown_literally() -> None:
    text = " ".join(server_parser().format_help().split())
    assert "±10% jitter" in text
