"""deploy/terraform: formatted, valid, its terraform tests pass, checkov finds nothing left
unexplained, and it agrees with the code (table, filter policy, probe, outbox log line, the
Ansible role). test_terraform_apply.py applies it to a moto server."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.terraform_support import (
    ARGUMENT_SPECS,
    PROBE_PATH,
    REGION,
    REPO,
    STACK_DIR,
    aws_environment,
    check,
    copy_stack,
    init,
    normalized_table_definition,
    planned_resource,
    secret_variables,
    show_plan,
    stack_variables,
    table_definition_from_terraform,
    terraform,
    terraform_environment,
)
from usermgmt_server.adapters.dynamodb.schema import TTL_ATTRIBUTE, table_definition
from usermgmt_server.adapters.events.sweeper import OutboxSweeper
from usermgmt_server.adapters.security.system import ManualClock
from usermgmt_server.domain.ports import OutboxBacklog
from usermgmt_server.logging_setup import JsonFormatter
from usermgmt_server.notifier.resources import DLQ_SUFFIX, FILTER_POLICY

CHECKOV_REQUIREMENTS = Path(__file__).with_name("checkov-requirements.txt")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised copy of the stack (the repository keeps no .terraform or state)."""
    directory = copy_stack(tmp_path_factory.mktemp("terraform") / "stack")
    init(directory)
    return directory


def test_readme_names_every_variable_and_output() -> None:
    readme = (STACK_DIR / "README.md").read_text()
    declared = re.findall(
        r'^(?:variable|output) "([a-z0-9_]+)"',
        "".join(path.read_text() for path in STACK_DIR.glob("*.tf")),
        re.MULTILINE,
    )
    assert len(declared) > 50
    assert [name for name in declared if f"`{name}`" not in readme] == []


def test_files_are_formatted() -> None:
    result = terraform(["fmt", "-check", "-recursive", "-diff", "-no-color"], cwd=STACK_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_uses_the_offline_mirror(workdir: Path) -> None:
    lock = (workdir / ".terraform.lock.hcl").read_text()
    assert re.search(r'provider "registry.terraform.io/hashicorp/aws" \{\s+version\s+= "5\.', lock)
    assert (workdir / ".terraform" / "providers" / "registry.terraform.io" / "hashicorp").is_dir()


def test_configuration_is_valid(workdir: Path) -> None:
    result = json.loads(check(terraform(["validate", "-json", "-no-color"], cwd=workdir)))
    assert result["valid"], result
    assert result["warning_count"] == 0, result["diagnostics"]


def test_terraform_tests_pass_against_the_mock_provider(workdir: Path) -> None:
    result = terraform(["test", "-no-color"], cwd=workdir, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    runs = sum(
        len(re.findall(r'^run "', path.read_text(), re.MULTILINE))
        for path in (workdir / "tests").glob("*.tftest.hcl")
    )
    assert runs >= 30
    assert f"Success! {runs} passed, 0 failed." in output, output


def test_checkov_finds_no_unexplained_failure(tmp_path: Path) -> None:
    # checkov pins packaging<24 and boto3 1.35, which the workspace cannot take (pytest 9,
    # aioboto3): it runs in its own environment, pinned with hashes in checkov-requirements.txt.
    uv = _uv()
    result = subprocess.run(
        [
            *uv,
            *("run", "--no-project", "--isolated", "--python", "3.11"),
            *("--with-requirements", str(CHECKOV_REQUIREMENTS)),
            *("checkov", "--directory", str(STACK_DIR), "--framework", "terraform"),
            *("--skip-download", "--compact", "--output", "json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    report = json.loads(result.stdout)
    summary = report["summary"]
    failures = [
        (item["check_id"], item["resource"], item["check_name"])
        for item in report["results"]["failed_checks"]
    ]
    assert failures == []
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 50
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, f"{skipped['check_id']} on {skipped['resource']} has no reason"
    assert "Failed to run check" not in result.stderr, result.stderr


def _uv() -> list[str]:
    """The uv command: on PATH, or the module of the Python that pip installed it into (as
    .ci/run and the Makefile call it)."""
    if found := shutil.which("uv"):
        return [found]
    for python in filter(None, (shutil.which("python3"), sys.executable)):
        probe = subprocess.run([python, "-m", "uv", "--version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [python, "-m", "uv"]
    pytest.fail("uv is needed to run checkov in its own environment (make venv installs it)")


@pytest.fixture(scope="module")
def plan(workdir: Path, moto_endpoint: str) -> dict[str, Any]:
    """The plan of a new stack against the moto server (which answers the data sources)."""
    env = terraform_environment({**aws_environment(moto_endpoint), **secret_variables()})
    certificate = f"arn:aws:acm:{REGION}:123456789012:certificate/{uuid.uuid4()}"
    variables = stack_variables(f"um{uuid.uuid4().hex[:8]}", certificate)
    check(terraform(["plan", "-no-color", "-out=stack.tfplan", *variables], workdir, env))
    return show_plan(workdir, "stack.tfplan", env)


def test_table_is_the_one_the_code_creates(plan: dict[str, Any]) -> None:
    values = planned_resource(plan, "aws_dynamodb_table.main")
    expected = normalized_table_definition(table_definition(values["name"]))
    assert table_definition_from_terraform(values) == expected
    assert values["ttl"] == [{"attribute_name": TTL_ATTRIBUTE, "enabled": True}]


def test_subscription_filters_as_the_notifier_expects(plan: dict[str, Any]) -> None:
    subscription = planned_resource(plan, "aws_sns_topic_subscription.notifications")
    assert json.loads(subscription["filter_policy"]) == FILTER_POLICY
    assert subscription["filter_policy_scope"] == "MessageAttributes"
    assert subscription["raw_message_delivery"] is True
    queue = planned_resource(plan, "aws_sqs_queue.notifications")
    dlq = planned_resource(plan, "aws_sqs_queue.notifications_dlq")
    assert dlq["name"] == queue["name"] + DLQ_SUFFIX


def test_health_check_calls_the_probe_rpc(plan: dict[str, Any]) -> None:
    target_group = planned_resource(plan, "aws_lb_target_group.grpc")
    assert target_group["protocol_version"] == "GRPC"
    assert target_group["health_check"][0]["path"] == PROBE_PATH
    assert target_group["health_check"][0]["matcher"] == "0"


class _WaitingOutbox:
    """An outbox holding 3 events, the oldest 42 s old, that hands none out."""

    def __init__(self, now: datetime) -> None:
        self._oldest = now - timedelta(seconds=42)

    async def backlog(self) -> OutboxBacklog:
        return OutboxBacklog(count=3, oldest=self._oldest)

    async def pending(self, *, written_before: datetime, limit: int) -> list[Any]:
        return []


class _FreeLease:
    async def acquire(self, name: str, owner: str, *, until: datetime, now: datetime) -> bool:
        return True


async def test_outbox_metric_filters_read_the_sweepers_log_line(
    plan: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    sweeper = OutboxSweeper(
        _WaitingOutbox(clock.now()),
        publisher=None,  # the backlog is logged before anything is published
        leases=_FreeLease(),
        clock=clock,
        interval=timedelta(seconds=5),
        grace=timedelta(seconds=10),
    )
    with caplog.at_level(logging.INFO, logger="usermgmt_server.adapters.events.sweeper"):
        await sweeper.sweep_once()
    (record,) = [r for r in caplog.records if r.name.endswith("sweeper")]
    line = json.loads(JsonFormatter().format(record))
    metrics = {}
    for address in ("outbox_backlog", "outbox_age"):
        metric_filter = planned_resource(plan, f"aws_cloudwatch_log_metric_filter.{address}")
        field, value = re.fullmatch(
            r'\{ \$\.(\w+) = "([^"]*)" \}', metric_filter["pattern"]
        ).groups()
        assert line[field] == value
        transformation = metric_filter["metric_transformation"][0]
        metrics[transformation["name"]] = line[transformation["value"].removeprefix("$.")]
    assert metrics == {"OutboxBacklog": 3, "OutboxOldestEventAge": 42.0}


def test_deploy_variables_are_the_roles(plan: dict[str, Any]) -> None:
    change = plan["output_changes"]["deploy_vars"]
    names = set(change["after"] or {}) | set(change["after_unknown"] or {})
    options = yaml.safe_load(ARGUMENT_SPECS.read_text())["argument_specs"]["main"]["options"]
    required = {name for name, spec in options.items() if spec.get("required")}
    assert names <= set(options), names - set(options)
    assert required <= names, required - names


def test_instances_run_the_ansible_the_role_is_tested_with(plan: dict[str, Any]) -> None:
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    tested = next(pin.split("==")[1] for pin in pins if pin.startswith("ansible=="))
    default = plan["configuration"]["root_module"]["variables"]["ansible_version"]["default"]
    assert default == tested
