"""A real run of site.yml with a local connection into a scratch root.

The wheels are built from this checkout, the role installs them into a virtual environment,
writes the environment file, the secrets and the units, and a second run changes nothing. The
parts that need root and systemd on a real host (the system user, OS packages, starting the
services) are switched off; the units are checked with ``systemd-analyze`` instead, and the
installed server is started the way its unit starts it (environment file, credentials,
no writable-executable memory) against the moto server.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.deploy.ansible_aws import create_scaling_group, register_by_lifecycle
from tests.deploy.ansible_support import (
    ANSIBLE_DIR,
    BIN,
    ansible_environment,
    exposure_level,
    play_recap,
    read_environment_file,
    recap_line,
    run,
)
from usermgmt.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    user_service_pb2,
    user_service_pb2_grpc,
)

pytestmark = pytest.mark.slow

UNITS = ("usermgmt-server.service", "usermgmt-notifier.service")
TOPIC_NAME = "usermgmt-events"
MAX_EXPOSURE = 2.0
# prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN): the kernel refuses memory that is writable and
# executable, as systemd's MemoryDenyWriteExecute= does; kept across fork and exec.
MDWE_EXEC = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "if libc.prctl(65, 1, 0, 0, 0) != 0:\n"
    "    sys.exit(f'PR_SET_MDWE failed: {os.strerror(ctypes.get_errno())}')\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


@dataclass(frozen=True)
class Deployment:
    """What the two runs of site.yml did, and where."""

    root: Path
    variables: dict[str, object]
    variables_file: Path
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]

    @property
    def venv(self) -> Path:
        return self.root / "opt/usermgmt/venv"

    @property
    def config_dir(self) -> Path:
        return self.root / "etc/usermgmt"

    @property
    def units_dir(self) -> Path:
        return self.root / "etc/systemd/system"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _signing_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _build_wheels(directory: Path) -> None:
    # `uv run` names its own executable in UV; pip may have put uv off PATH.
    uv = os.environ.get("UV") or shutil.which("uv") or "uv"
    result = run(
        [uv, "build", "--all-packages", "--wheel", "--out-dir", str(directory)],
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert len(list(directory.glob("usermgmt_*.whl"))) == 2, result.stderr


def _site_command(variables_file: Path) -> list[str]:
    return [
        str(BIN / "ansible-playbook"),
        "-c",
        "local",
        "-i",
        "localhost,",
        "site.yml",
        "-e",
        f"@{variables_file}",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "-e",
        "ansible_become=false",
        "-v",
        "--diff",
    ]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    base = tmp_path_factory.mktemp("ansible-role")
    wheels = base / "wheels"
    _build_wheels(wheels)
    root = base / "root"
    # What every host has before the role runs.
    for directory in ("etc/systemd/system", "etc/logrotate.d", "opt", "var/log"):
        (root / directory).mkdir(parents=True)
    account = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    variables: dict[str, object] = {
        # The contract with the instance user data.
        "usermgmt_region": "us-east-1",
        "usermgmt_table_name": f"usermgmt-ansible-{os.getpid()}",
        "usermgmt_topic_arn": f"arn:aws:sns:us-east-1:123456789012:{TOPIC_NAME}",
        "usermgmt_notification_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/n",
        "usermgmt_ssm_signing_key_parameter": "/usermgmt/jwt-signing-key",
        "usermgmt_ssm_hmac_secret_parameter": "/usermgmt/hmac-secret",
        "usermgmt_wheels_dir": str(wheels),
        "usermgmt_listen_port": _free_port(),
        "usermgmt_workers": 2,
        "usermgmt_log_group": "/usermgmt/ansible-test",
        # Secrets given directly, which skips the SSM lookups.
        "usermgmt_signing_key_pem": _signing_key_pem(),
        "usermgmt_hmac_secret": os.urandom(24).hex(),
        # A scratch root instead of the host's, without root or systemd.
        "usermgmt_root": str(root),
        "usermgmt_manage_user": False,
        "usermgmt_manage_packages": False,
        "usermgmt_manage_services": False,
        "usermgmt_group": group,
        "usermgmt_config_owner": account,
        "usermgmt_python": sys.executable,
        "usermgmt_listen_address": "127.0.0.1",
        "usermgmt_extra_environment": {"USERMGMT_REQUIRE_EMAIL_VERIFICATION": "false"},
    }
    variables_file = base / "deploy-vars.json"
    variables_file.write_text(json.dumps(variables))
    environment = ansible_environment(base / "ansible")
    command = _site_command(variables_file)
    first = run(command, env=environment, cwd=ANSIBLE_DIR)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run(command, env=environment, cwd=ANSIBLE_DIR)
    assert second.returncode == 0, second.stdout + second.stderr
    return Deployment(root, variables, variables_file, first, second)


def test_second_run_changes_nothing(deployment: Deployment) -> None:
    first = play_recap(deployment.first.stdout)["localhost"]
    second = play_recap(deployment.second.stdout)["localhost"]
    assert first["changed"] > 0 and first["failed"] == 0
    assert second["changed"] == 0, recap_line(deployment.second.stdout)
    assert second["failed"] == 0 and second["unreachable"] == 0


def test_installed_commands_run(deployment: Deployment) -> None:
    for command in ("usermgmt-server", "usermgmt-notifier"):
        result = run([str(deployment.venv / "bin" / command), "--help"], env={**os.environ})
        assert result.returncode == 0, result.stderr
        assert f"usage: {command}" in result.stdout
    assert deployment.venv.is_symlink()
    release = deployment.venv.resolve()
    assert release.parent == deployment.root / "opt/usermgmt/releases"


def test_environment_file_holds_every_setting_and_no_secret(deployment: Deployment) -> None:
    path = deployment.config_dir / "usermgmt.env"
    variables = deployment.variables
    assert read_environment_file(path) == {
        "AWS_REGION": "us-east-1",
        "USERMGMT_TABLE_NAME": variables["usermgmt_table_name"],
        "USERMGMT_TOPIC_ARN": variables["usermgmt_topic_arn"],
        "USERMGMT_LISTEN_ADDRESS": f"127.0.0.1:{variables['usermgmt_listen_port']}",
        "USERMGMT_TRUSTED_PROXY_HOPS": "1",
        "USERMGMT_DRAIN_SECONDS": "5",
        "USERMGMT_SHUTDOWN_GRACE": "10",
        "USERMGMT_LOG_FORMAT": "json",
        "USERMGMT_LOG_LEVEL": "INFO",
        "USERMGMT_NOTIFIER_QUEUE_URL": variables["usermgmt_notification_queue_url"],
        "USERMGMT_NOTIFIER_FROM_ADDRESS": "no-reply@usermgmt.local",
        "USERMGMT_REQUIRE_EMAIL_VERIFICATION": "false",
    }
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid())
    assert stat.S_IMODE(deployment.config_dir.stat().st_mode) == 0o750


def test_secrets_are_private_files_and_never_printed(deployment: Deployment) -> None:
    credentials = deployment.config_dir / "credentials"
    pem = str(deployment.variables["usermgmt_signing_key_pem"])
    hmac_secret = str(deployment.variables["usermgmt_hmac_secret"])
    assert (credentials / "jwt-signing-key.pem").read_text() == pem.strip() + "\n"
    assert (credentials / "hmac-secret").read_text() == hmac_secret
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
    for name in ("jwt-signing-key.pem", "hmac-secret"):
        assert stat.S_IMODE((credentials / name).stat().st_mode) == 0o600
    key_body = pem.splitlines()[1]
    printed = [
        text
        for run_ in (deployment.first, deployment.second)
        for text in (run_.stdout, run_.stderr)
    ]
    written = [
        path.read_text()
        for path in (deployment.config_dir / "usermgmt.env", *deployment.units_dir.iterdir())
    ]
    for text in printed + written:
        assert key_body not in text and hmac_secret not in text


def test_secrets_from_ssm_parameters_write_the_same_files(
    deployment: Deployment, moto_endpoint: str, tmp_path: Path
) -> None:
    # The instance user data gives only the parameter names; the role reads SecureStrings.
    ssm = boto3.client("ssm", endpoint_url=moto_endpoint, region_name="us-east-1")
    variables = dict(deployment.variables)
    for secret, parameter in (
        ("usermgmt_signing_key_pem", "usermgmt_ssm_signing_key_parameter"),
        ("usermgmt_hmac_secret", "usermgmt_ssm_hmac_secret_parameter"),
    ):
        name = f"/usermgmt-ansible-{uuid.uuid4().hex[:8]}/{secret}"
        ssm.put_parameter(Name=name, Value=str(variables.pop(secret)), Type="SecureString")
        variables[parameter] = name
    variables_file = tmp_path / "deploy-vars.json"
    variables_file.write_text(json.dumps(variables))
    environment = {**ansible_environment(tmp_path / "ansible"), "AWS_ENDPOINT_URL": moto_endpoint}
    result = run(_site_command(variables_file), env=environment, cwd=ANSIBLE_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    # Same secrets, same files: nothing to change, and nothing printed.
    assert play_recap(result.stdout)["localhost"]["changed"] == 0, recap_line(result.stdout)
    pem = str(deployment.variables["usermgmt_signing_key_pem"])
    hmac_secret = str(deployment.variables["usermgmt_hmac_secret"])
    for text in (result.stdout, result.stderr):
        assert pem.splitlines()[1] not in text and hmac_secret not in text


@pytest.mark.parametrize("unit", UNITS)
def test_unit_exposure_is_at_most_two(deployment: Deployment, unit: str) -> None:
    result = run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", unit],
        env={**os.environ},
        cwd=deployment.units_dir,
    )
    analysis = result.stdout + result.stderr
    assert exposure_level(analysis) <= MAX_EXPOSURE, analysis


@pytest.mark.parametrize("unit", UNITS)
def test_unit_verifies_cleanly(deployment: Deployment, unit: str) -> None:
    # verify reports unknown or malformed settings on stderr and fails when ExecStart's
    # command does not exist (here: the scratch root's virtual environment).
    result = run(
        ["systemd-analyze", "verify", "--man=no", str(deployment.units_dir / unit)],
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


def test_units_run_the_installed_release_with_credentials(deployment: Deployment) -> None:
    server = (deployment.units_dir / "usermgmt-server.service").read_text()
    credentials = deployment.config_dir / "credentials"
    assert f"ExecStart={deployment.venv}/bin/usermgmt-server serve --workers 2\n" in server
    assert f"LoadCredential=jwt-signing-key:{credentials}/jwt-signing-key.pem\n" in server
    assert "Environment=USERMGMT_JWT_PRIVATE_KEY_FILE=%d/jwt-signing-key\n" in server
    assert "Environment=USERMGMT_HMAC_SECRET_FILE=%d/hmac-secret\n" in server
    # Longer than the server's drain (5 s), shutdown grace (10 s) and supervisor margin (15 s).
    assert "TimeoutStopSec=45\n" in server
    notifier = (deployment.units_dir / "usermgmt-notifier.service").read_text()
    assert f"ExecStart={deployment.venv}/bin/usermgmt-notifier\n" in notifier
    assert "LoadCredential" not in notifier
    logs = deployment.root / "var/log/usermgmt"
    assert f"StandardError=append:{logs}/server.log\n" in server
    assert f"StandardError=append:{logs}/notifier.log\n" in notifier


def test_cloudwatch_agent_ships_both_logs(deployment: Deployment) -> None:
    config = json.loads((deployment.config_dir / "cloudwatch-agent.json").read_text())
    collected = config["logs"]["logs_collected"]["files"]["collect_list"]
    logs = deployment.root / "var/log/usermgmt"
    assert {(entry["file_path"], entry["log_group_name"]) for entry in collected} == {
        (f"{logs}/server.log", "/usermgmt/ansible-test"),
        (f"{logs}/notifier.log", "/usermgmt/ansible-test"),
    }


def test_writable_executable_memory_is_refused_under_the_guard() -> None:
    # The control for the next test: the same guard stops a process that asks for such memory.
    result = run(
        [
            sys.executable,
            "-c",
            MDWE_EXEC,
            sys.executable,
            "-c",
            "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)",
        ],
        env={**os.environ},
    )
    assert result.returncode != 0
    assert "PermissionError" in result.stderr, result.stderr


@pytest.fixture(scope="module")
def running_server(deployment: Deployment, moto_endpoint: str) -> Iterator[str]:
    """The installed server started as its unit starts it, without writable-executable memory."""
    credentials = deployment.config_dir / "credentials"
    environment = {
        "PATH": os.environ["PATH"],
        **{key: os.environ[key] for key in os.environ if key.startswith("AWS_")},
        **read_environment_file(deployment.config_dir / "usermgmt.env"),
        # What LoadCredential= and %d give the service under systemd.
        "USERMGMT_JWT_PRIVATE_KEY_FILE": str(credentials / "jwt-signing-key.pem"),
        "USERMGMT_HMAC_SECRET_FILE": str(credentials / "hmac-secret"),
        "AWS_ENDPOINT_URL": moto_endpoint,
    }
    server = str(deployment.venv / "bin/usermgmt-server")
    created = run(
        [server, "create-resources", "--topic-name", TOPIC_NAME], env=environment, timeout=120
    )
    assert created.returncode == 0, created.stderr
    log = (deployment.root / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", MDWE_EXEC, server, "serve"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield environment["USERMGMT_LISTEN_ADDRESS"]
    finally:
        process.terminate()
        exit_code = process.wait(timeout=60)
        log.close()
        assert exit_code == 0, (deployment.root / "server.log").read_text()


def test_installed_server_serves_without_writable_executable_memory(
    deployment: Deployment, running_server: str
) -> None:
    probe = [
        str(deployment.venv / "bin/python"),
        str(deployment.root / "opt/usermgmt/bin/usermgmt_ready.py"),
        "--address",
        running_server,
    ]
    deadline = time.monotonic() + 60
    while (ready := run(probe, env={**os.environ})).returncode != 0:
        assert time.monotonic() < deadline, ready.stderr
        time.sleep(0.5)
    assert ready.stdout.strip() == f"ready: {running_server}"
    # Argon2 hashing, DynamoDB transactions and ES256 signing all run in the guarded process.
    password = "a long and unusual passphrase 7"
    with grpc.insecure_channel(running_server) as channel:
        users = user_service_pb2_grpc.UserServiceStub(channel)
        auth = auth_service_pb2_grpc.AuthServiceStub(channel)
        registered = users.Register(
            user_service_pb2.RegisterRequest(
                username="deployed", email="deployed@example.com", password=password
            ),
            timeout=30,
        )
        signed_in = auth.Authenticate(
            auth_service_pb2.AuthenticateRequest(login="deployed", password=password), timeout=30
        )
    assert registered.user.username == "deployed"
    assert signed_in.access_token.count(".") == 2


def test_rollout_takes_the_instance_out_installs_and_returns_it(
    deployment: Deployment, running_server: str, moto_endpoint: str, tmp_path: Path
) -> None:
    group = create_scaling_group(moto_endpoint)
    instance = group.instance_ids[0]
    release = tmp_path / "release"
    shutil.copytree(Path(str(deployment.variables["usermgmt_wheels_dir"])), release)
    # The instance as the aws_ec2 inventory names it, in the playbook's default group; the
    # AWS calls go to the implicit localhost, as from an operator's machine.
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"[usermgmt]\n{instance} ansible_connection=local"
        f" ansible_python_interpreter={sys.executable}\n"
    )
    command = [
        str(BIN / "ansible-playbook"),
        "-i",
        str(inventory),
        "rollout.yml",
        # What the instance metadata service tells on an instance.
        "-e",
        f"usermgmt_rollout_instance_id={instance}",
        "-e",
        f"usermgmt_deploy_vars_file={deployment.variables_file}",
        "-e",
        f"usermgmt_rollout_wheels_dir={release}",
        "-e",
        "usermgmt_rollout_poll_delay=1",
        "-e",
        "ansible_become=false",
    ]
    environment = {**ansible_environment(tmp_path / "ansible"), "AWS_ENDPOINT_URL": moto_endpoint}
    with register_by_lifecycle(group) as lifecycle:
        result = run(command, env=environment, cwd=ANSIBLE_DIR)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    recap = play_recap(result.stdout)
    assert recap[instance]["failed"] == 0 and recap["localhost"]["failed"] == 0
    # Out of the target group while the release was installed and probed, then back in.
    assert lifecycle.deregistered == [instance], output
    assert group.lifecycle_state(instance) == "InService"
    assert group.desired_capacity() == 2
    assert group.target_states() == {member: "healthy" for member in group.instance_ids}
    standby = output.index("TASK [Put the instance in standby")
    probe = output.index("TASK [Wait until the server answers its readiness probe]")
    back = output.index("TASK [Return the instance to service]")
    healthy = output.index("TASK [Wait until every target group sees the instance healthy]")
    assert standby < probe < back < healthy
