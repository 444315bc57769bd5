# The whole stack applied against the mock provider (tests/mocks): the properties the service,
# the Ansible role and the ALB's gRPC support depend on.

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target = aws_sqs_queue.notifications_dlq
  values = {
    arn = "arn:aws:sqs:eu-west-1:123456789012:usermgmt-notifications-dlq"
    id  = "https://sqs.eu-west-1.amazonaws.com/123456789012/usermgmt-notifications-dlq"
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/usermgmt-notifications-dlq"
  }
}

override_resource {
  target = aws_ssm_parameter.hmac_secret
  values = { arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/usermgmt/hmac-secret" }
}

override_resource {
  target = aws_security_group.alb
  values = { id = "sg-0a1b000000000000a" }
}

override_resource {
  target = aws_security_group.instances
  values = { id = "sg-0a1b000000000000b" }
}

variables {
  region                = "eu-west-1"
  certificate_arn       = "arn:aws:acm:eu-west-1:123456789012:certificate/0f4b1b6c-1111-2222-3333-444455556666"
  release_s3_uri        = "s3://usermgmt-releases/1.0.0/"
  notifier_from_address = "no-reply@example.com"
  hmac_secret           = "0123456789abcdef0123456789abcdef0123456789abcdef"
  signing_key_pem       = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
}

run "network_spans_two_zones" {
  assert {
    condition     = length(aws_subnet.public) == 2 && length(aws_subnet.private) == 2
    error_message = "One public and one private subnet per availability zone."
  }
  assert {
    condition     = length(toset(aws_subnet.private[*].availability_zone)) == 2
    error_message = "The private subnets must lie in different availability zones."
  }
  assert {
    condition     = length(aws_nat_gateway.main) == 1 && length(aws_flow_log.vpc) == 1
    error_message = "One NAT gateway by default, and flow logs on."
  }
  assert {
    condition     = toset(keys(aws_vpc_endpoint.gateway)) == toset(["dynamodb", "s3"])
    error_message = "DynamoDB and S3 gateway endpoints for the private route tables."
  }
  assert {
    condition     = length(aws_default_security_group.main[0].ingress) == 0 && length(aws_default_security_group.main[0].egress) == 0
    error_message = "The default security group must allow nothing."
  }
}

run "load_balancer_speaks_grpc_over_https" {
  assert {
    condition     = aws_lb.main.drop_invalid_header_fields && aws_lb.main.load_balancer_type == "application"
    error_message = "An application load balancer that drops invalid header fields."
  }
  assert {
    condition     = aws_lb.main.subnets == toset(aws_subnet.public[*].id) && aws_lb.main.idle_timeout < 75
    error_message = "The ALB sits in the public subnets and closes idle connections before the server (75 s)."
  }
  assert {
    condition     = aws_lb_listener.https.protocol == "HTTPS" && aws_lb_listener.https.port == 443
    error_message = "gRPC through an ALB needs an HTTPS listener."
  }
  assert {
    condition     = aws_lb_listener.https.certificate_arn == var.certificate_arn && startswith(aws_lb_listener.https.ssl_policy, "ELBSecurityPolicy-TLS13-")
    error_message = "The listener uses the given certificate and a TLS 1.2+ policy."
  }
  assert {
    condition     = aws_lb_listener.https.default_action[0].type == "forward" && aws_lb_listener.https.default_action[0].target_group_arn == aws_lb_target_group.grpc.arn
    error_message = "The listener forwards to the gRPC target group."
  }
  assert {
    condition     = aws_lb_target_group.grpc.protocol == "HTTP" && aws_lb_target_group.grpc.protocol_version == "GRPC"
    error_message = "The target group must be protocol HTTP with protocol version GRPC."
  }
  assert {
    condition     = aws_lb_target_group.grpc.name_prefix == "userm-"
    error_message = "The target group is named by prefix, so that a replacement can exist beside it."
  }
  assert {
    condition     = aws_lb_target_group.grpc.port == 50051 && aws_lb_target_group.grpc.target_type == "instance" && aws_lb_target_group.grpc.load_balancing_algorithm_type == "least_outstanding_requests"
    error_message = "The target group sends to the instances' gRPC port, to the least busy first."
  }
  assert {
    condition     = aws_lb_target_group.grpc.health_check[0].path == "/usermgmt.v1.ProbeService/Ready"
    error_message = "The health check calls the readiness probe."
  }
  assert {
    condition     = aws_lb_target_group.grpc.health_check[0].matcher == "0" && aws_lb_target_group.grpc.health_check[0].protocol == "HTTP"
    error_message = "The health check accepts gRPC status 0 (OK) only."
  }
  assert {
    condition     = tonumber(aws_lb_target_group.grpc.deregistration_delay) == 5 + 10 + 15
    error_message = "The deregistration delay is the drain period plus the shutdown grace plus the margin."
  }
}

run "instances_only_take_grpc_from_the_load_balancer" {
  assert {
    condition     = aws_vpc_security_group_ingress_rule.instances_grpc.security_group_id == aws_security_group.instances.id
    error_message = "The gRPC rule belongs to the instances' group."
  }
  assert {
    condition     = aws_vpc_security_group_ingress_rule.instances_grpc.referenced_security_group_id == aws_security_group.alb.id && aws_vpc_security_group_ingress_rule.instances_grpc.cidr_ipv4 == null
    error_message = "Only the load balancer's security group may reach the gRPC port."
  }
  assert {
    condition     = aws_vpc_security_group_ingress_rule.instances_grpc.from_port == 50051 && aws_vpc_security_group_ingress_rule.instances_grpc.to_port == 50051
    error_message = "Only the gRPC port is open."
  }
  assert {
    condition     = aws_vpc_security_group_egress_rule.alb_to_instances.referenced_security_group_id == aws_security_group.instances.id && aws_vpc_security_group_egress_rule.alb_to_instances.from_port == 50051
    error_message = "The load balancer sends only to the instances' gRPC port."
  }
  assert {
    condition     = [for rule in aws_vpc_security_group_ingress_rule.alb_https : rule.from_port] == [443]
    error_message = "Clients reach only the HTTPS listener."
  }
}

run "launch_template_bootstraps_with_the_role" {
  assert {
    condition     = aws_launch_template.main.metadata_options[0].http_tokens == "required" && aws_launch_template.main.metadata_options[0].http_endpoint == "enabled"
    error_message = "IMDSv2 must be required."
  }
  assert {
    condition     = aws_launch_template.main.iam_instance_profile[0].arn == aws_iam_instance_profile.instances.arn
    error_message = "The instances run with the stack's instance profile."
  }
  assert {
    condition     = aws_launch_template.main.block_device_mappings[0].ebs[0].encrypted == "true"
    error_message = "The root volume is encrypted."
  }
  assert {
    condition     = aws_launch_template.main.image_id == "ami-0123456789abcdef0"
    error_message = "Without ami_id the image comes from the public Amazon Linux parameter."
  }
  assert {
    condition     = strcontains(base64decode(aws_launch_template.main.user_data), "/bin/ansible-playbook\" -c local -i localhost, \"$DEPLOY_DIR/ansible/site.yml\" -e \"@$DEPLOY_VARS\"")
    error_message = "The user data applies site.yml locally with the deploy variables."
  }
  assert {
    condition     = strcontains(base64decode(aws_launch_template.main.user_data), jsonencode(output.deploy_vars))
    error_message = "The user data writes the deploy variables as JSON."
  }
  assert {
    condition     = strcontains(base64decode(aws_launch_template.main.user_data), "'ansible==12.3.0'") && strcontains(base64decode(aws_launch_template.main.user_data), "RELEASE_URI='s3://usermgmt-releases/1.0.0/'")
    error_message = "The user data installs the pinned ansible and fetches the given release."
  }
  assert {
    condition     = output.deploy_vars.usermgmt_table_name == aws_dynamodb_table.main.name && output.deploy_vars.usermgmt_topic_arn == aws_sns_topic.events.arn && output.deploy_vars.usermgmt_notification_queue_url == aws_sqs_queue.notifications.url
    error_message = "The role gets this stack's table, topic and queue."
  }
  assert {
    condition     = output.deploy_vars.usermgmt_ssm_signing_key_parameter == "/usermgmt/jwt-signing-key" && output.deploy_vars.usermgmt_ssm_hmac_secret_parameter == "/usermgmt/hmac-secret"
    error_message = "The role reads the secrets from the stack's SSM parameters."
  }
  assert {
    condition     = output.deploy_vars.usermgmt_listen_port == aws_lb_target_group.grpc.port && output.deploy_vars.usermgmt_log_group == aws_cloudwatch_log_group.services.name
    error_message = "The server listens on the target group's port and logs to the stack's log group."
  }
  assert {
    condition     = output.deploy_vars.usermgmt_extra_environment.USERMGMT_NOTIFIER_VISIBILITY_TIMEOUT == tostring(aws_sqs_queue.notifications.visibility_timeout_seconds)
    error_message = "The notifier hides received messages as long as the queue does."
  }
}

run "group_replaces_unhealthy_instances_and_refreshes" {
  assert {
    condition     = aws_autoscaling_group.main.health_check_type == "ELB" && aws_autoscaling_group.main.health_check_grace_period == 600
    error_message = "The group trusts the target group's health checks after a grace period."
  }
  assert {
    condition     = aws_autoscaling_group.main.target_group_arns == toset([aws_lb_target_group.grpc.arn])
    error_message = "The group registers its instances in the gRPC target group."
  }
  assert {
    condition     = aws_autoscaling_group.main.vpc_zone_identifier == toset(aws_subnet.private[*].id)
    error_message = "The instances run in the private subnets."
  }
  assert {
    condition     = aws_autoscaling_group.main.launch_template[0].version == tostring(aws_launch_template.main.latest_version)
    error_message = "The group follows the launch template's latest version."
  }
  assert {
    condition     = aws_autoscaling_group.main.instance_refresh[0].strategy == "Rolling" && aws_autoscaling_group.main.instance_refresh[0].preferences[0].min_healthy_percentage == 100
    error_message = "A new launch template version is rolled out without losing capacity."
  }
}

run "instance_refresh_can_be_turned_off" {
  variables {
    instance_refresh = false
  }
  assert {
    condition     = length(aws_autoscaling_group.main.instance_refresh) == 0
    error_message = "instance_refresh = false leaves the group without instance refresh."
  }
}

run "table_is_durable_and_encrypted" {
  assert {
    condition     = aws_dynamodb_table.main.billing_mode == "PAY_PER_REQUEST" && aws_dynamodb_table.main.hash_key == "pk" && aws_dynamodb_table.main.range_key == "sk"
    error_message = "On-demand table keyed by pk and sk."
  }
  assert {
    condition     = aws_dynamodb_table.main.point_in_time_recovery[0].enabled && aws_dynamodb_table.main.deletion_protection_enabled
    error_message = "Point-in-time recovery and deletion protection are on."
  }
  assert {
    condition     = aws_dynamodb_table.main.server_side_encryption[0].enabled && aws_dynamodb_table.main.server_side_encryption[0].kms_key_arn == aws_kms_key.main.arn
    error_message = "The table is encrypted with the stack's key."
  }
  assert {
    condition     = aws_dynamodb_table.main.ttl[0].enabled && aws_dynamodb_table.main.ttl[0].attribute_name == "expires_at"
    error_message = "TTL on expires_at."
  }
  assert {
    condition     = [for index in aws_dynamodb_table.main.global_secondary_index : [index.name, index.hash_key, index.range_key, index.projection_type]] == [["users-by-shard", "gsi1pk", "gsi1sk", "ALL"]]
    error_message = "The sparse listing index users-by-shard."
  }
}

run "deletion_protection_can_be_turned_off" {
  variables {
    deletion_protection = false
  }
  assert {
    condition     = !aws_dynamodb_table.main.deletion_protection_enabled
    error_message = "deletion_protection = false turns it off."
  }
}

run "notifications_flow_through_a_filtered_queue" {
  assert {
    condition     = aws_sns_topic.events.kms_master_key_id == aws_kms_key.main.arn
    error_message = "The event topic is encrypted with the stack's key."
  }
  assert {
    condition     = jsondecode(aws_sns_topic_subscription.notifications.filter_policy) == { event_type = [{ prefix = "usermgmt.notification." }] }
    error_message = "Only notification requests reach the notifier's queue."
  }
  assert {
    condition     = aws_sns_topic_subscription.notifications.filter_policy_scope == "MessageAttributes" && aws_sns_topic_subscription.notifications.raw_message_delivery
    error_message = "The filter applies to message attributes, and the queue gets the raw CloudEvent."
  }
  assert {
    condition     = aws_sns_topic_subscription.notifications.protocol == "sqs" && aws_sns_topic_subscription.notifications.endpoint == aws_sqs_queue.notifications.arn
    error_message = "The topic delivers to the notifier's queue."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.notifications.redrive_policy) == { deadLetterTargetArn = aws_sqs_queue.notifications_dlq.arn, maxReceiveCount = 5 }
    error_message = "After 5 receives a message moves to the dead-letter queue."
  }
  assert {
    condition     = aws_sqs_queue.notifications_dlq.name == "${aws_sqs_queue.notifications.name}-dlq" && aws_sqs_queue.notifications_dlq.message_retention_seconds == 1209600
    error_message = "The dead-letter queue is <queue>-dlq and keeps messages 14 days."
  }
  assert {
    condition     = aws_sqs_queue.notifications.kms_master_key_id == aws_kms_key.main.arn && aws_sqs_queue.notifications_dlq.kms_master_key_id == aws_kms_key.main.arn
    error_message = "Both queues are encrypted with the stack's key."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue_policy.notifications.policy).Statement[0].Condition.ArnEquals["aws:SourceArn"] == aws_sns_topic.events.arn
    error_message = "Only the event topic may send to the queue."
  }
}

run "max_receive_count_is_configurable" {
  variables {
    max_receive_count = 8
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.notifications.redrive_policy).maxReceiveCount == 8
    error_message = "max_receive_count sets the redrive policy."
  }
}

run "secrets_are_secure_strings" {
  assert {
    condition     = aws_ssm_parameter.signing_key.type == "SecureString" && aws_ssm_parameter.hmac_secret.type == "SecureString"
    error_message = "Both secrets are SecureString parameters."
  }
  assert {
    condition     = aws_ssm_parameter.signing_key.key_id == aws_kms_key.main.arn && aws_ssm_parameter.hmac_secret.key_id == aws_kms_key.main.arn
    error_message = "Both secrets are encrypted with the stack's key."
  }
  assert {
    condition     = aws_ssm_parameter.signing_key.value_wo == null && aws_ssm_parameter.hmac_secret.value_wo == null
    error_message = "Write-only values never reach the state."
  }
  assert {
    condition     = aws_kms_key.main.enable_key_rotation
    error_message = "The key rotates."
  }
}

run "instance_role_is_least_privilege" {
  assert {
    condition     = alltrue([for statement in jsondecode(aws_iam_role_policy.instances.policy).Statement : !contains(flatten([lookup(statement, "Resource", [])]), "*")])
    error_message = "No statement of the instance policy has a wildcard resource."
  }
  assert {
    condition     = alltrue([for statement in jsondecode(aws_iam_role_policy.instances.policy).Statement : alltrue([for action in flatten([statement.Action]) : !endswith(action, "*")])])
    error_message = "No statement of the instance policy has a wildcard action."
  }
  assert {
    condition = toset(flatten([
      for statement in jsondecode(aws_iam_role_policy.instances.policy).Statement : flatten([statement.Resource])
      if anytrue([for action in flatten([statement.Action]) : startswith(action, "dynamodb:")])
    ])) == toset([aws_dynamodb_table.main.arn, "${aws_dynamodb_table.main.arn}/index/users-by-shard"])
    error_message = "DynamoDB access covers this table and its index only."
  }
  assert {
    condition = [
      for statement in jsondecode(aws_iam_role_policy.instances.policy).Statement : statement.Resource
      if statement.Sid == "PublishEvents"
    ] == [aws_sns_topic.events.arn]
    error_message = "sns:Publish on topics is limited to the event topic."
  }
  assert {
    condition = [
      for statement in jsondecode(aws_iam_role_policy.instances.policy).Statement : statement.NotResource
      if statement.Sid == "SendSms"
    ] == ["arn:aws:sns:*:*:*"]
    error_message = "SMS publishing excludes every SNS topic."
  }
  assert {
    condition = toset(flatten([
      for statement in jsondecode(aws_iam_role_policy.instances.policy).Statement : flatten([statement.Resource])
      if statement.Sid == "ReadSecrets"
    ])) == toset([aws_ssm_parameter.signing_key.arn, aws_ssm_parameter.hmac_secret.arn])
    error_message = "ssm:GetParameter covers the two secrets only."
  }
  assert {
    condition = [
      for statement in jsondecode(aws_iam_role_policy.instances.policy).Statement : [statement.Resource, statement.Condition.StringEquals["ses:FromAddress"]]
      if statement.Sid == "SendEmail"
    ] == [["arn:aws:ses:eu-west-1:123456789012:identity/example.com", "no-reply@example.com"]]
    error_message = "E-mail goes out only from the notifier's address."
  }
  assert {
    condition = [
      for statement in jsondecode(aws_iam_role_policy.instances.policy).Statement : flatten([statement.Action])
      if statement.Sid == "ReadNotificationRequests"
    ] == [["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]]
    error_message = "The notifier reads and deletes queue messages, nothing else."
  }
}

run "sms_can_be_turned_off" {
  variables {
    sms_enabled = false
  }
  assert {
    condition     = alltrue([for statement in jsondecode(aws_iam_role_policy.instances.policy).Statement : statement.Sid != "SendSms"])
    error_message = "sms_enabled = false drops the SMS statement."
  }
}

run "alarms_watch_the_service" {
  assert {
    condition = toset(keys(aws_cloudwatch_metric_alarm.main)) == toset([
      "alb-5xx", "target-5xx", "unhealthy-hosts", "dynamodb-read-throttles", "dynamodb-write-throttles",
      "notifications-dlq", "outbox-backlog", "outbox-age",
    ])
    error_message = "Alarms on ALB 5xx, unhealthy hosts, DynamoDB throttles, the DLQ and the outbox."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.main["notifications-dlq"].dimensions.QueueName == aws_sqs_queue.notifications_dlq.name && aws_cloudwatch_metric_alarm.main["notifications-dlq"].threshold == 0
    error_message = "Any message in the dead-letter queue raises the alarm."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.main["unhealthy-hosts"].dimensions.TargetGroup == aws_lb_target_group.grpc.arn_suffix
    error_message = "The unhealthy-hosts alarm watches the gRPC target group."
  }
  assert {
    condition     = aws_cloudwatch_log_metric_filter.outbox_backlog.pattern == "{ $.message = \"outbox backlog\" }" && aws_cloudwatch_log_metric_filter.outbox_backlog.metric_transformation[0].value == "$.outbox_backlog"
    error_message = "The backlog metric comes from the sweeper's 'outbox backlog' log line."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.main["outbox-backlog"].namespace == aws_cloudwatch_log_metric_filter.outbox_backlog.metric_transformation[0].namespace && aws_cloudwatch_metric_alarm.main["outbox-backlog"].metric_name == aws_cloudwatch_log_metric_filter.outbox_backlog.metric_transformation[0].name
    error_message = "The outbox alarm watches the metric the filter writes."
  }
  assert {
    condition     = aws_cloudwatch_log_group.services.kms_key_id == aws_kms_key.main.arn && aws_cloudwatch_log_group.services.retention_in_days == 365
    error_message = "The log group is encrypted and kept a year."
  }
}
