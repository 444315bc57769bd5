"""Run terraform on ``deploy/terraform`` offline, in a working copy, and read what it plans.

terraform and the provider mirror are required: without them the tests fail, they never skip.
The mirror is ``/opt/tf-plugins`` unless ``USERMGMT_TF_PLUGIN_DIR`` names another directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from usermgmt.v1 import probe_service_pb2

REPO = Path(__file__).resolve().parents[2]
STACK_DIR = REPO / "deploy" / "terraform"
ARGUMENT_SPECS = REPO / "deploy" / "ansible" / "roles" / "usermgmt" / "meta" / "argument_specs.yml"
PROBE_PATH = "/{}/Ready".format(
    probe_service_pb2.DESCRIPTOR.services_by_name["ProbeService"].full_name
)
PLUGIN_DIR_VARIABLE = "USERMGMT_TF_PLUGIN_DIR"
DEFAULT_PLUGIN_DIR = Path("/opt/tf-plugins")
REGION = "us-east-1"


def terraform_binary() -> str:
    """Path of the terraform executable (``TERRAFORM`` or the one on PATH); fails the test
    when there is none."""
    binary = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if not binary:
        pytest.fail("terraform is not installed (not on PATH, TERRAFORM not set)")
    return binary


def plugin_dir() -> Path:
    """The filesystem mirror holding hashicorp/aws; fails the test when it is missing."""
    path = Path(os.environ.get(PLUGIN_DIR_VARIABLE, str(DEFAULT_PLUGIN_DIR)))
    provider = path / "registry.terraform.io" / "hashicorp" / "aws"
    if not provider.is_dir() or not any(provider.iterdir()):
        pytest.fail(
            f"no hashicorp/aws provider in the terraform mirror {path} "
            f"(set {PLUGIN_DIR_VARIABLE} to the mirror directory)"
        )
    return path


def terraform_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every terraform command: no CLI configuration file (the machine's
    default names one that does not exist), no prompts, no update check, no AWS profile."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TF_") and key not in {"AWS_PROFILE", "AWS_CONFIG_FILE"}
    }
    environment.update(
        TF_CLI_CONFIG_FILE="/dev/null",
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    environment.update(extra or {})
    return environment


def terraform(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``terraform args`` in ``cwd`` and capture its output."""
    return subprocess.run(
        [terraform_binary(), *args],
        cwd=cwd,
        env=env if env is not None else terraform_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def check(result: subprocess.CompletedProcess[str]) -> str:
    """The standard output of a command that must have succeeded."""
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def copy_stack(destination: Path) -> Path:
    """A copy of ``deploy/terraform`` without local state or provider downloads."""
    shutil.copytree(
        STACK_DIR,
        destination,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.*", "*.tfplan"),
    )
    return destination


def init(workdir: Path) -> str:
    """``terraform init`` from the offline mirror (checking the committed lock file)."""
    return check(
        terraform(["init", "-input=false", "-no-color", f"-plugin-dir={plugin_dir()}"], cwd=workdir)
    )


def secret_variables() -> dict[str, str]:
    """``TF_VAR_*`` values of the two write-only secrets: a fresh P-256 key and HMAC secret."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {"TF_VAR_signing_key_pem": pem, "TF_VAR_hmac_secret": secrets.token_hex(32)}


def aws_environment(endpoint: str) -> dict[str, str]:
    """Credentials and endpoint that point the AWS provider (and boto3) at an emulator."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }


def stack_variables(name: str, certificate_arn: str) -> list[str]:
    """``-var`` arguments for a stack on the emulator: no instance refresh (moto has none) and
    no deletion protection, so that it can be destroyed."""
    values = {
        "name": name,
        "region": REGION,
        "certificate_arn": certificate_arn,
        "release_s3_uri": "s3://usermgmt-releases/1.0.0/",
        "notifier_from_address": "no-reply@example.com",
        "instance_refresh": "false",
        "alb_deletion_protection": "false",
        "deletion_protection": "false",
    }
    return [f"-var={key}={value}" for key, value in values.items()]


def show_plan(workdir: Path, plan_file: str, env: dict[str, str]) -> dict[str, Any]:
    """``terraform show -json`` of a saved plan."""
    return json.loads(check(terraform(["show", "-json", plan_file], cwd=workdir, env=env)))


def planned_resource(plan: dict[str, Any], address: str) -> dict[str, Any]:
    """The planned values of the resource at ``address``."""
    for resource in plan["planned_values"]["root_module"]["resources"]:
        if resource["address"] == address:
            return resource["values"]
    raise AssertionError(f"{address} is not in the plan")


def table_definition_from_terraform(values: dict[str, Any]) -> dict[str, Any]:
    """The ``CreateTable`` arguments an ``aws_dynamodb_table``'s planned values stand for,
    normalised (Terraform keeps attributes and indexes as sets)."""
    definition = {
        "TableName": values["name"],
        "AttributeDefinitions": [
            {"AttributeName": item["name"], "AttributeType": item["type"]}
            for item in values["attribute"]
        ],
        "KeySchema": _key_schema(values["hash_key"], values.get("range_key")),
        "BillingMode": values["billing_mode"],
        "SSESpecification": {"Enabled": values["server_side_encryption"][0]["enabled"]},
    }
    indexes = [
        {
            "IndexName": index["name"],
            "KeySchema": _key_schema(index["hash_key"], index.get("range_key")),
            "Projection": _projection(index["projection_type"], index.get("non_key_attributes")),
        }
        for index in values["global_secondary_index"]
    ]
    if indexes:
        definition["GlobalSecondaryIndexes"] = indexes
    if values.get("local_secondary_index"):
        definition["LocalSecondaryIndexes"] = values["local_secondary_index"]
    return normalized_table_definition(definition)


def table_definition_from_description(table: dict[str, Any]) -> dict[str, Any]:
    """The ``CreateTable`` arguments a ``DescribeTable`` answer stands for."""
    definition = {
        "TableName": table["TableName"],
        "AttributeDefinitions": table["AttributeDefinitions"],
        "KeySchema": table["KeySchema"],
        "BillingMode": table["BillingModeSummary"]["BillingMode"],
        "SSESpecification": {"Enabled": table.get("SSEDescription", {}).get("Status") == "ENABLED"},
    }
    indexes = [
        {
            "IndexName": index["IndexName"],
            "KeySchema": index["KeySchema"],
            "Projection": index["Projection"],
        }
        for index in table.get("GlobalSecondaryIndexes", [])
    ]
    if indexes:
        definition["GlobalSecondaryIndexes"] = indexes
    if table.get("LocalSecondaryIndexes"):
        definition["LocalSecondaryIndexes"] = table["LocalSecondaryIndexes"]
    return normalized_table_definition(definition)


def normalized_table_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """``definition`` with its unordered parts (attributes, indexes) in a fixed order."""
    normalized = dict(definition)
    normalized["AttributeDefinitions"] = sorted(
        definition["AttributeDefinitions"], key=lambda item: item["AttributeName"]
    )
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if key in definition:
            normalized[key] = sorted(definition[key], key=lambda index: index["IndexName"])
    return normalized


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


def _projection(projection_type: str, non_key_attributes: list[str] | None) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": projection_type}
    if non_key_attributes:
        projection["NonKeyAttributes"] = sorted(non_key_attributes)
    return projection


@contextmanager
def moto_server_process() -> Iterator[str]:
    """A moto server in its own process, with AWS managed IAM policies loaded (the stack
    attaches AmazonSSMManagedInstanceCore) and no state shared with other tests; yields its
    endpoint URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(endpoint, process)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_serving(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("moto server did not start within 60 s")
