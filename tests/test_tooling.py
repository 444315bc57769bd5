"""The build's own guarantees: proto lint and compatibility, fresh generated code, architecture
contracts, formatting, the published API surface and the client's dependency footprint."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from usermgmt.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    probe_service_pb2,
    probe_service_pb2_grpc,
    user_pb2,
    user_service_pb2,
    user_service_pb2_grpc,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROTO = ROOT / "proto"
GENERATED = ROOT / "client" / "src" / "usermgmt" / "v1"
GENERATOR = ROOT / "client" / "tools" / "generate_protos.py"

CLIENT_RUNTIME_DEPENDENCIES = {"grpcio", "protobuf", "googleapis-common-protos", "grpcio-status"}


def run(*args: str | Path, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command from the venv (or git) and capture its output as text."""
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_ok(result: subprocess.CompletedProcess) -> None:
    command = " ".join(result.args)
    output = f"{result.stdout}\n{result.stderr}".strip()
    assert result.returncode == 0, f"`{command}` exited {result.returncode}:\n{output}"


def tool(name: str) -> Path:
    path = BIN / name
    assert path.exists(), f"{name} is not installed next to {sys.executable}; run `make venv`"
    return path


# --- proto -------------------------------------------------------------------------------------


def test_buf_lint_passes() -> None:
    assert_ok(run(tool("buf"), "lint", "proto"))


def _previous_commit_with_api() -> tuple[str, str]:
    """(git directory, commit id) of HEAD~1 if it exists and holds proto/usermgmt; else skip."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git_dir = run("git", "rev-parse", "--path-format=absolute", "--git-common-dir")
    if git_dir.returncode != 0:
        pytest.skip("not a git checkout, so there is no previous commit to compare with")
    previous = run("git", "rev-parse", "--verify", "--quiet", "HEAD~1^{commit}")
    if previous.returncode != 0:
        pytest.skip("HEAD~1 does not exist (first commit or shallow clone)")
    commit = previous.stdout.strip()
    listing = run("git", "ls-tree", "--name-only", commit, "proto/usermgmt")
    if listing.returncode != 0 or not listing.stdout.strip():
        pytest.skip(f"HEAD~1 ({commit[:12]}) has no proto/usermgmt yet")
    return git_dir.stdout.strip(), commit


def test_buf_breaking_against_previous_commit() -> None:
    # The common git directory and a commit id (rather than `.git` and `HEAD~1`) also work in a
    # linked worktree, where `.git` is a file and HEAD belongs to the worktree.
    git_dir, commit = _previous_commit_with_api()
    assert_ok(
        run(tool("buf"), "breaking", "proto", "--against", f"{git_dir}#subdir=proto,ref={commit}")
    )


def test_buf_breaking_detects_a_renumbered_field(tmp_path: Path) -> None:
    """The breaking check is not vacuous: moving a field to another number is reported."""
    changed = tmp_path / "proto"
    shutil.copytree(PROTO, changed)
    user_proto = changed / "usermgmt" / "v1" / "user.proto"
    text = user_proto.read_text()
    assert "string etag = 10;" in text
    user_proto.write_text(text.replace("string etag = 10;", "string etag = 99;"))
    result = run(tool("buf"), "breaking", changed, "--against", PROTO)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "etag" in result.stdout + result.stderr


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    assert_ok(run(sys.executable, GENERATOR, tmp_path, timeout=300))
    fresh_dir = tmp_path / "usermgmt" / "v1"

    def files(directory: Path) -> dict[str, bytes]:
        return {
            path.relative_to(directory).as_posix(): path.read_bytes()
            for path in sorted(directory.rglob("*"))
            if path.is_file() and path.name != "__init__.py" and "__pycache__" not in path.parts
        }

    fresh, committed = files(fresh_dir), files(GENERATED)
    assert fresh, "the generator produced nothing"
    missing = sorted(fresh.keys() - committed.keys())
    extra = sorted(committed.keys() - fresh.keys())
    stale = sorted(
        name for name in fresh.keys() & committed.keys() if fresh[name] != committed[name]
    )
    assert (missing, extra, stale) == ([], [], []), (
        f"client/src/usermgmt/v1 is out of date with proto/ (run `make proto`): "
        f"missing={missing} extra={extra} different={stale}"
    )


# --- code quality ------------------------------------------------------------------------------


def test_import_contracts_are_kept() -> None:
    assert_ok(run(tool("lint-imports"), "--no-logo"))


def test_ruff_check_passes() -> None:
    assert_ok(run(tool("ruff"), "check", "--no-cache", "."))


def test_ruff_format_check_passes() -> None:
    assert_ok(run(tool("ruff"), "format", "--check", "--no-cache", "."))


# --- the API other services depend on ----------------------------------------------------------

SERVICES = {
    (user_service_pb2, user_service_pb2_grpc, "UserService"): [
        "Register",
        "GetUser",
        "UpdateUser",
        "DeleteUser",
        "ListUsers",
    ],
    (auth_service_pb2, auth_service_pb2_grpc, "AuthService"): ["Authenticate"],
    (probe_service_pb2, probe_service_pb2_grpc, "ProbeService"): ["Ready"],
}

CLIENT_STREAMING = {"usermgmt.v1.UserService.ImportUsers"}


@pytest.mark.parametrize(
    ("module", "grpc_module", "service_name"),
    list(SERVICES),
    ids=[name for _, _, name in SERVICES],
)
def test_service_contract(module, grpc_module, service_name: str) -> None:
    service = module.DESCRIPTOR.services_by_name[service_name]
    assert service.full_name == f"usermgmt.v1.{service_name}"
    methods = SERVICES[module, grpc_module, service_name]
    # Other services depend on these names: they must exist (new RPCs may be added).
    assert set(methods) <= {method.name for method in service.methods}
    for method in service.methods:
        # One request/response pair per RPC, named after it; unary calls except the bulk ones.
        assert method.input_type.full_name == f"usermgmt.v1.{method.name}Request"
        assert method.output_type.full_name == f"usermgmt.v1.{method.name}Response"
        assert method.client_streaming == (method.full_name in CLIENT_STREAMING)
        assert not method.server_streaming
    assert hasattr(grpc_module, f"{service_name}Stub")
    assert hasattr(grpc_module, f"{service_name}Servicer")
    assert hasattr(grpc_module, f"add_{service_name}Servicer_to_server")


def test_user_message_contract() -> None:
    user = user_pb2.DESCRIPTOR.message_types_by_name["User"]
    assert user.full_name == "usermgmt.v1.User"
    fields = {field.name: field.number for field in user.fields}
    assert (
        fields.items()
        >= {
            "user_id": 1,
            "username": 2,
            "email": 3,
            "display_name": 4,
            "state": 5,
            "email_verified": 6,
            "roles": 7,
            "create_time": 8,
            "update_time": 9,
            "etag": 10,
        }.items()
    )
    assert user.fields_by_name["state"].enum_type.full_name == "usermgmt.v1.UserState"
    assert user.fields_by_name["create_time"].message_type.full_name == "google.protobuf.Timestamp"
    assert user.fields_by_name["update_time"].message_type.full_name == "google.protobuf.Timestamp"
    assert user.fields_by_name["roles"].is_repeated
    secret_like = [
        field.name
        for field in user.fields
        if field.type in (field.TYPE_STRING, field.TYPE_BYTES)
        and ("password" in field.name or "hash" in field.name)
    ]
    assert secret_like == [], "User must never carry a password or its hash"


def test_user_state_contract() -> None:
    state = user_pb2.DESCRIPTOR.enum_types_by_name["UserState"]
    assert {value.name: value.number for value in state.values} == {
        "USER_STATE_UNSPECIFIED": 0,
        "USER_STATE_ACTIVE": 1,
        "USER_STATE_PENDING_VERIFICATION": 2,
        "USER_STATE_DISABLED": 3,
    }


# --- packaging ---------------------------------------------------------------------------------


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def test_client_declares_only_allowed_runtime_dependencies() -> None:
    project = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]
    names = {_requirement_name(requirement) for requirement in project.get("dependencies", [])}
    assert names <= CLIENT_RUNTIME_DEPENDENCIES, sorted(names - CLIENT_RUNTIME_DEPENDENCIES)
    assert {"grpcio", "protobuf"} <= names


def test_server_takes_the_generated_code_from_the_client() -> None:
    project = tomllib.loads((ROOT / "server" / "pyproject.toml").read_text())["project"]
    names = {_requirement_name(requirement) for requirement in project["dependencies"]}
    assert "usermgmt-client" in names
