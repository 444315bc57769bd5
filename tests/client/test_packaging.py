"""The ``usermgmt-client`` wheel installs alone: its runtime needs only grpcio, protobuf,
googleapis-common-protos and grpcio-status, and the CLI works without the server package."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _uv() -> str:
    # `uv run` (how make runs the tests) names its own executable in UV.
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to build the wheel: run the tests through `make test`"
    return uv


def _run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
    )
    assert result.returncode == 0, f"{' '.join(result.args)}:\n{result.stdout}\n{result.stderr}"
    return result


# Not a coroutine: nothing here talks to the in-process servers, and blocking is intended.
def test_the_wheel_installs_and_runs_alone(tmp_path: Path) -> None:
    uv = _uv()
    dist = tmp_path / "dist"
    _run(uv, "build", "--package", "usermgmt-client", "--wheel", "--out-dir", dist)
    (wheel,) = dist.glob("usermgmt_client-*.whl")

    venv = tmp_path / "venv"
    _run(uv, "venv", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    _run(uv, "pip", "install", "--python", python, wheel)

    installed = _run(uv, "pip", "freeze", "--python", python).stdout
    names = {re.split(r"==| @ ", line)[0].lower() for line in installed.splitlines() if line}
    assert names == {
        "usermgmt-client",
        "grpcio",
        "protobuf",
        "googleapis-common-protos",
        "grpcio-status",
        # grpcio's own dependency
        "typing-extensions",
    }, installed

    probe = """
import importlib.util, usermgmt
from usermgmt.v1 import auth_service_pb2_grpc, user_pb2, user_service_pb2_grpc
from usermgmt import UsermgmtClient, UsermgmtError, RetryPolicy
assert importlib.util.find_spec("usermgmt_server") is None
assert user_pb2.User(username="a").username == "a"
assert hasattr(user_service_pb2_grpc, "UserServiceStub")
try:
    import usermgmt.verify
except ImportError as error:
    assert "usermgmt-client[verify]" in str(error), error
else:
    raise AssertionError("usermgmt.verify imported without the verify extra")
print("ok", usermgmt.__version__)
"""
    assert _run(python, "-c", probe).stdout.strip() == "ok 0.1.0"
    assert "__init__.pyi" not in {p.name for p in (venv / "lib").rglob("usermgmt/*.pyi")}
    assert list((venv / "lib").rglob("usermgmt/v1/user_pb2.pyi")), "the typing stubs ship"

    help_text = _run(venv / "bin" / "usermgmt", "--help").stdout
    assert "login" in help_text and "exit codes" in help_text
    assert "usermgmt" in _run(python, "-m", "usermgmt.cli", "--version").stdout

    # S3 and SQS need the aws extra; without it the command says how to get it.
    for source in (["s3://bucket/users.csv"], ["--from-sqs", "https://sqs.example/1/queue"]):
        without_boto3 = subprocess.run(
            [str(python), "-m", "usermgmt.cli", "import", *source],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert without_boto3.returncode == 1, without_boto3.stderr
        assert "pip install 'usermgmt-client[aws]'" in without_boto3.stderr


@pytest.mark.parametrize("extra", ["verify", "cli", "aws"])
def test_extras_are_pinned(extra: str) -> None:
    import tomllib

    project = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]
    requirements = project["optional-dependencies"][extra]
    assert requirements and all("==" in requirement for requirement in requirements)
    server = tomllib.loads((ROOT / "server" / "pyproject.toml").read_text())["project"]
    if extra == "verify":
        assert set(requirements) <= set(server["dependencies"]), "same pyjwt as the server"
    if extra == "aws":
        lock = (ROOT / "uv.lock").read_text()
        (boto3,) = requirements
        version = boto3.partition("==")[2]
        assert f'name = "boto3"\nversion = "{version}"' in lock, "the boto3 of the lock"
    assert project["scripts"]["usermgmt"] == "usermgmt.cli:main"
