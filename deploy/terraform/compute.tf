# The instances: a launch template that bootstraps them with the Ansible role, and an Auto
# Scaling group in the private subnets behind the gRPC target group.

data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null ? 1 : 0
  name  = var.ami_ssm_parameter
}

locals {
  ami_id     = var.ami_id != null ? var.ami_id : nonsensitive(data.aws_ssm_parameter.ami[0].value)
  wheels_dir = "/opt/usermgmt/wheels"

  # /etc/usermgmt/deploy-vars.json: the Ansible role's variables (deploy/ansible/README.md).
  deploy_vars = {
    usermgmt_region                    = var.region
    usermgmt_table_name                = aws_dynamodb_table.main.name
    usermgmt_topic_arn                 = aws_sns_topic.events.arn
    usermgmt_notification_queue_url    = aws_sqs_queue.notifications.url
    usermgmt_wheels_dir                = local.wheels_dir
    usermgmt_ssm_signing_key_parameter = aws_ssm_parameter.signing_key.name
    usermgmt_ssm_hmac_secret_parameter = aws_ssm_parameter.hmac_secret.name
    usermgmt_listen_port               = var.grpc_port
    usermgmt_workers                   = var.workers
    usermgmt_log_group                 = aws_cloudwatch_log_group.services.name
    usermgmt_log_level                 = var.log_level
    usermgmt_drain_seconds             = var.drain_seconds
    usermgmt_shutdown_grace            = var.shutdown_grace
    usermgmt_notifier_from_address     = var.notifier_from_address
    usermgmt_extra_environment = merge(
      { USERMGMT_NOTIFIER_VISIBILITY_TIMEOUT = tostring(var.notifier_visibility_timeout) },
      var.extra_environment,
    )
  }

  user_data = templatefile("${path.module}/templates/user_data.sh.tftpl", {
    release_s3_uri  = var.release_s3_uri
    wheels_dir      = local.wheels_dir
    region          = var.region
    ansible_version = var.ansible_version
    deploy_vars     = jsonencode(local.deploy_vars)
  })
}

data "aws_ami" "selected" {
  owners = ["self", "amazon", "aws-marketplace"]
  filter {
    name   = "image-id"
    values = [local.ami_id]
  }
}

resource "aws_launch_template" "main" {
  name_prefix            = "${var.name}-"
  description            = "usermgmt ${var.name} server"
  image_id               = local.ami_id
  instance_type          = var.instance_type
  update_default_version = true
  vpc_security_group_ids = [aws_security_group.instances.id]
  user_data              = base64encode(local.user_data)
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.instances.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = data.aws_ami.selected.root_device_name
    ebs {
      volume_size           = var.root_volume_size
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = var.name }
  }

  tag_specifications {
    resource_type = "volume"
    tags          = { Name = var.name }
  }
}

resource "aws_autoscaling_group" "main" {
  name                      = var.name
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  vpc_zone_identifier       = local.private_subnet_ids
  target_group_arns         = [aws_lb_target_group.grpc.arn]
  health_check_type         = "ELB"
  health_check_grace_period = var.health_check_grace_period
  default_instance_warmup   = var.instance_warmup
  enabled_metrics           = ["GroupDesiredCapacity", "GroupInServiceInstances", "GroupPendingInstances", "GroupStandbyInstances", "GroupTerminatingInstances", "GroupTotalInstances"]

  launch_template {
    id      = aws_launch_template.main.id
    version = aws_launch_template.main.latest_version
  }

  # A new launch template version (AMI, user data, settings) replaces the instances in rolling
  # batches, launching new ones before old ones go while min_healthy_percentage is 100.
  dynamic "instance_refresh" {
    for_each = var.instance_refresh ? [1] : []
    content {
      strategy = "Rolling"
      preferences {
        min_healthy_percentage = var.instance_refresh_min_healthy_percentage
        max_healthy_percentage = min(200, var.instance_refresh_min_healthy_percentage + 100)
        instance_warmup        = var.instance_warmup
        skip_matching          = true
        auto_rollback          = true
      }
    }
  }

  tag {
    key                 = "Name"
    value               = var.name
    propagate_at_launch = true
  }

  lifecycle {
    # The scaling policy (and rollout.yml's standby) move the desired capacity.
    ignore_changes = [desired_capacity]
  }
}

resource "aws_autoscaling_policy" "cpu" {
  name                   = "${var.name}-cpu"
  autoscaling_group_name = aws_autoscaling_group.main.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = var.cpu_target
    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
  }
}

resource "aws_security_group" "instances" {
  name_prefix = "${var.name}-instances-"
  description = "usermgmt ${var.name} instances: gRPC from the load balancer only, HTTPS out to AWS and PyPI"
  vpc_id      = local.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "instances_grpc" {
  security_group_id            = aws_security_group.instances.id
  description                  = "gRPC calls and health checks from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.grpc_port
  to_port                      = var.grpc_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "instances_https" {
  security_group_id = aws_security_group.instances.id
  description       = "HTTPS to the AWS APIs, the release bucket, PyPI and the OS package mirrors"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
