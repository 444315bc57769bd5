"""The whole Terraform stack applies to a moto server and is destroyed again; in between,
what it built is read back through boto3 and compared with what the code expects."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.deploy.ansible_support import BIN, ansible_environment
from tests.deploy.terraform_support import (
    ARGUMENT_SPECS,
    PROBE_PATH,
    REGION,
    aws_environment,
    check,
    copy_stack,
    init,
    moto_server_process,
    normalized_table_definition,
    secret_variables,
    show_plan,
    stack_variables,
    table_definition_from_description,
    terraform,
    terraform_environment,
)
from usermgmt_server.adapters.dynamodb.schema import TTL_ATTRIBUTE, table_definition
from usermgmt_server.notifier.resources import FILTER_POLICY

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1200)
def test_stack_applies_and_destroys_on_moto(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = copy_stack(tmp_path / "stack")
    init(workdir)
    with moto_server_process() as endpoint:
        aws = _Aws(endpoint)
        certificate = aws.client("acm").request_certificate(DomainName="usermgmt.example.com")
        name = f"um{uuid.uuid4().hex[:8]}"
        secrets = secret_variables()
        env = terraform_environment({**aws_environment(endpoint), **secrets})
        variables = stack_variables(name, certificate["CertificateArn"])

        started = time.monotonic()
        check(terraform(["apply", "-auto-approve", "-no-color", *variables], workdir, env, 900))
        applied = time.monotonic() - started
        outputs = {
            key: item["value"]
            for key, item in json.loads(check(terraform(["output", "-json"], workdir, env))).items()
        }

        _check_table(aws, outputs["table_name"])
        _check_notification_pipeline(aws, outputs)
        _check_load_balancer(aws, outputs)
        _check_instances(aws, outputs, tmp_path)
        _check_secrets(aws, outputs, secrets, workdir)
        _check_target_group_is_replaced_before_it_goes(workdir, env, variables)

        started = time.monotonic()
        check(terraform(["destroy", "-auto-approve", "-no-color", *variables], workdir, env, 900))
        destroyed = time.monotonic() - started
        assert check(terraform(["state", "list"], workdir, env)).strip() == ""
        tables = aws.client("dynamodb").list_tables()["TableNames"]
        assert outputs["table_name"] not in tables
    with capsys.disabled():
        print(f"\nterraform on moto: apply {applied:.0f} s, destroy {destroyed:.0f} s")


class _Aws:
    """boto3 clients on the moto server."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint

    def client(self, service: str) -> Any:
        """A client of ``service``."""
        return boto3.client(
            service,
            endpoint_url=self._endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def _check_table(aws: _Aws, table_name: str) -> None:
    dynamodb = aws.client("dynamodb")
    described = dynamodb.describe_table(TableName=table_name)["Table"]
    expected = normalized_table_definition(table_definition(table_name))
    assert table_definition_from_description(described) == expected
    ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", TTL_ATTRIBUTE)
    backups = dynamodb.describe_continuous_backups(TableName=table_name)
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"


def _check_notification_pipeline(aws: _Aws, outputs: dict[str, Any]) -> None:
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = outputs["topic_arn"]
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])
    attributes = attributes["Attributes"]
    assert json.loads(attributes["FilterPolicy"]) == FILTER_POLICY
    assert attributes["RawMessageDelivery"] == "true"
    queue = outputs["notification_queue_url"]
    queue_attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])
    redrive = json.loads(queue_attributes["Attributes"]["RedrivePolicy"])
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=outputs["notification_dlq_url"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert redrive == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}

    # What the server publishes: only notification requests reach the notifier's queue.
    for event_type in ("usermgmt.user.registered.v1", "usermgmt.notification.welcome.v1"):
        sns.publish(
            TopicArn=topic,
            Message=json.dumps({"type": event_type}),
            MessageAttributes={"event_type": {"DataType": "String", "StringValue": event_type}},
        )
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    bodies = [json.loads(message["Body"]) for message in received.get("Messages", [])]
    assert bodies == [{"type": "usermgmt.notification.welcome.v1"}]


def _check_load_balancer(aws: _Aws, outputs: dict[str, Any]) -> None:
    elbv2 = aws.client("elbv2")
    (target_group,) = elbv2.describe_target_groups(TargetGroupArns=[outputs["target_group_arn"]])[
        "TargetGroups"
    ]
    assert (target_group["Protocol"], target_group["ProtocolVersion"]) == ("HTTP", "GRPC")
    assert target_group["HealthCheckPath"] == PROBE_PATH
    assert target_group["Matcher"] == {"GrpcCode": "0"}
    assert target_group["HealthCheckProtocol"] == "HTTP"
    attributes = elbv2.describe_target_group_attributes(
        TargetGroupArn=target_group["TargetGroupArn"]
    )
    settings = {item["Key"]: item["Value"] for item in attributes["Attributes"]}
    assert settings["deregistration_delay.timeout_seconds"] == "30"
    (balancer_arn,) = target_group["LoadBalancerArns"]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=balancer_arn)["Listeners"]
    assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    balancer_attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=balancer_arn)
    balancer_settings = {item["Key"]: item["Value"] for item in balancer_attributes["Attributes"]}
    assert balancer_settings["routing.http.drop_invalid_header_fields.enabled"] == "true"


def _check_instances(aws: _Aws, outputs: dict[str, Any], tmp_path: Path) -> None:
    autoscaling, ec2 = aws.client("autoscaling"), aws.client("ec2")
    (group,) = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[outputs["autoscaling_group_name"]]
    )["AutoScalingGroups"]
    assert group["HealthCheckType"] == "ELB"
    assert group["TargetGroupARNs"] == [outputs["target_group_arn"]]
    assert len(group["Instances"]) == group["MinSize"] == 2
    template = group["LaunchTemplate"]
    (version,) = ec2.describe_launch_template_versions(
        LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    user_data = base64.b64decode(data["UserData"]).decode()
    script = tmp_path / "user-data.sh"
    script.write_text(user_data)
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    deploy_vars = json.loads(
        user_data.split("<<'USERMGMT_DEPLOY_VARS'\n")[1].split("\nUSERMGMT_DEPLOY_VARS\n")[0]
    )
    assert deploy_vars == outputs["deploy_vars"]
    assert deploy_vars["usermgmt_table_name"] == outputs["table_name"]
    assert deploy_vars["usermgmt_notification_queue_url"] == outputs["notification_queue_url"]
    _check_role_accepts(deploy_vars, tmp_path)


def _check_role_accepts(deploy_vars: dict[str, Any], tmp_path: Path) -> None:
    """Ansible checks the deploy variables against the role's argument specification (names,
    types, required options), as the role does when it starts on the instance."""
    playbook = tmp_path / "validate.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Check the deploy variables",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Validate against the role's argument_specs",
                            "ansible.builtin.validate_argument_spec": {
                                "argument_spec": "{{ specs.argument_specs.main.options }}",
                                "provided_arguments": "{{ deploy_vars }}",
                            },
                        }
                    ],
                }
            ]
        )
    )
    extra = {"deploy_vars": deploy_vars, "specs": yaml.safe_load(ARGUMENT_SPECS.read_text())}
    command = [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    result = subprocess.run(
        [*command, "-e", json.dumps(extra)],
        env=ansible_environment(tmp_path / "ansible"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout


def _check_secrets(
    aws: _Aws, outputs: dict[str, Any], secrets: dict[str, str], workdir: Path
) -> None:
    ssm = aws.client("ssm")
    for output, variable in (
        ("signing_key_parameter", "TF_VAR_signing_key_pem"),
        ("hmac_secret_parameter", "TF_VAR_hmac_secret"),
    ):
        parameter = ssm.get_parameter(Name=outputs[output], WithDecryption=True)["Parameter"]
        assert parameter["Type"] == "SecureString"
        assert parameter["Value"] == secrets[variable]
    state = (workdir / "terraform.tfstate").read_text()
    assert secrets["TF_VAR_hmac_secret"] not in state
    assert "PRIVATE KEY" not in state


def _check_target_group_is_replaced_before_it_goes(
    workdir: Path, env: dict[str, str], variables: list[str]
) -> None:
    # A new port (like a new protocol version) replaces the target group: the new one must
    # exist before the listener leaves the old one.
    check(
        terraform(
            ["plan", "-no-color", "-out=port.tfplan", "-var=grpc_port=50052", *variables],
            workdir,
            env,
        )
    )
    changes = {
        change["address"]: change["change"]["actions"]
        for change in show_plan(workdir, "port.tfplan", env)["resource_changes"]
    }
    assert changes["aws_lb_target_group.grpc"] == ["create", "delete"]
