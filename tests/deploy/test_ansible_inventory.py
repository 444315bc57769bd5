"""The example dynamic inventory finds the Auto Scaling group's instances (on the moto server)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import yaml

from tests.deploy.ansible_aws import create_scaling_group
from tests.deploy.ansible_support import ANSIBLE_DIR, BIN, ansible_environment, run


def _plain(value: object) -> object:
    # ansible-inventory marks values that came from outside as {"__ansible_unsafe": value}.
    return value["__ansible_unsafe"] if isinstance(value, dict) else value


def test_inventory_lists_the_group_instances_by_id_with_private_addresses(
    moto_endpoint: str, tmp_path: Path
) -> None:
    group = create_scaling_group(moto_endpoint)
    create_scaling_group(moto_endpoint)  # another group, which must stay out
    example = yaml.safe_load((ANSIBLE_DIR / "inventory" / "aws_ec2.yml").read_text())
    example["filters"]["tag:aws:autoscaling:groupName"] = group.name
    inventory = tmp_path / "test.aws_ec2.yml"  # the plugin reads only files named *aws_ec2.yml
    inventory.write_text(yaml.safe_dump(example))
    result = run(
        [str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
        env={**ansible_environment(tmp_path), "AWS_ENDPOINT_URL": moto_endpoint},
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert sorted(listed["usermgmt"]["hosts"]) == sorted(group.instance_ids)
    ec2 = boto3.client("ec2", endpoint_url=moto_endpoint, region_name=os.environ["AWS_REGION"])
    reservations = ec2.describe_instances(InstanceIds=group.instance_ids)["Reservations"]
    addresses = {
        instance["InstanceId"]: instance["PrivateIpAddress"]
        for reservation in reservations
        for instance in reservation["Instances"]
    }
    hostvars = listed["_meta"]["hostvars"]
    assert {host: _plain(hostvars[host]["ansible_host"]) for host in group.instance_ids} == (
        addresses
    )
