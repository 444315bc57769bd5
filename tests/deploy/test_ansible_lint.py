"""The playbooks and the role pass ansible-lint's production profile and a syntax check."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.ansible_support import ANSIBLE_DIR, BIN, ansible_environment, run


@pytest.mark.slow
def test_ansible_lint_production_profile_passes(tmp_path: Path) -> None:
    # --offline: no collection installs from Galaxy and no schema refresh; the collections
    # come with the ansible package.
    result = run(
        [str(BIN / "ansible-lint"), "--offline", "--profile", "production", "--nocolor"],
        env=ansible_environment(tmp_path),
        cwd=ANSIBLE_DIR,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Profile 'production' was required, and it passed." in output, output


@pytest.mark.parametrize("playbook", ["site.yml", "rollout.yml"])
def test_playbook_passes_syntax_check(playbook: str, tmp_path: Path) -> None:
    result = run(
        [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", playbook],
        env=ansible_environment(tmp_path),
        cwd=ANSIBLE_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"playbook: {playbook}" in result.stdout
