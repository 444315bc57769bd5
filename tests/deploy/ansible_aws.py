"""An Auto Scaling group behind a target group on the moto server, for rollout.yml."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import boto3

PORT = 50051


@dataclass(frozen=True)
class ScalingGroup:
    """An Auto Scaling group whose instances are targets of one target group."""

    name: str
    target_group_arn: str
    instance_ids: list[str]
    endpoint: str

    def client(self, service: str):
        """A boto3 client of ``service`` on the moto server."""
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1")

    def lifecycle_state(self, instance_id: str) -> str:
        """The instance's state in the group (InService, Standby ...)."""
        instances = self.client("autoscaling").describe_auto_scaling_instances(
            InstanceIds=[instance_id]
        )["AutoScalingInstances"]
        return instances[0]["LifecycleState"]

    def desired_capacity(self) -> int:
        """The group's desired capacity."""
        groups = self.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.name]
        )["AutoScalingGroups"]
        return groups[0]["DesiredCapacity"]

    def target_states(self) -> dict[str, str]:
        """Target health state by instance id."""
        descriptions = self.client("elbv2").describe_target_health(
            TargetGroupArn=self.target_group_arn
        )["TargetHealthDescriptions"]
        return {item["Target"]["Id"]: item["TargetHealth"]["State"] for item in descriptions}


def create_scaling_group(endpoint: str, size: int = 2) -> ScalingGroup:
    """A VPC, a gRPC target group and a group of ``size`` instances registered in it."""
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1")
    elbv2 = boto3.client("elbv2", endpoint_url=endpoint, region_name="us-east-1")
    autoscaling = boto3.client("autoscaling", endpoint_url=endpoint, region_name="us-east-1")
    name = f"usermgmt-{uuid.uuid4().hex[:12]}"
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")
    target_group = elbv2.create_target_group(
        Name=name,
        Protocol="HTTP",
        ProtocolVersion="GRPC",
        Port=PORT,
        VpcId=vpc,
        TargetType="instance",
    )["TargetGroups"][0]["TargetGroupArn"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"}
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name},
        MinSize=0,
        MaxSize=size + 1,
        DesiredCapacity=size,
        VPCZoneIdentifier=subnet["Subnet"]["SubnetId"],
        TargetGroupARNs=[target_group],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    instance_ids = [item["InstanceId"] for item in group["AutoScalingGroups"][0]["Instances"]]
    return ScalingGroup(name, target_group, instance_ids, endpoint)


@dataclass
class StandbyRegistration:
    """Instances taken out of the target group in standby and put back when in service."""

    deregistered: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


@contextmanager
def register_by_lifecycle(group: ScalingGroup) -> Iterator[StandbyRegistration]:
    """Deregister instances that enter standby from the target group; register them back later.

    EC2 Auto Scaling does this itself; moto's enter-standby and exit-standby only change the
    lifecycle state, so the rollout's waits for draining and health would never end without it.
    """
    record = StandbyRegistration()
    autoscaling, elbv2 = group.client("autoscaling"), group.client("elbv2")

    def watch() -> None:
        while not record.stop.wait(0.5):
            registered = {
                instance for instance, state in group.target_states().items() if state != "unused"
            }
            instances = autoscaling.describe_auto_scaling_instances(InstanceIds=group.instance_ids)[
                "AutoScalingInstances"
            ]
            for instance in instances:
                instance_id, state = instance["InstanceId"], instance["LifecycleState"]
                target = [{"Id": instance_id, "Port": PORT}]
                if state == "Standby" and instance_id in registered:
                    elbv2.deregister_targets(TargetGroupArn=group.target_group_arn, Targets=target)
                    record.deregistered.append(instance_id)
                elif state == "InService" and instance_id not in registered:
                    elbv2.register_targets(TargetGroupArn=group.target_group_arn, Targets=target)
                    record.registered.append(instance_id)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        record.stop.set()
        thread.join(10)
