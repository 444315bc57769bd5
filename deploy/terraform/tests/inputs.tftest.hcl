# Variables refuse values the ALB, the service or AWS would reject, and an existing VPC replaces
# the network the stack would build.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  region                = "eu-west-1"
  certificate_arn       = "arn:aws:acm:eu-west-1:123456789012:certificate/0f4b1b6c-1111-2222-3333-444455556666"
  release_s3_uri        = "s3://usermgmt-releases/1.0.0/"
  notifier_from_address = "no-reply@example.com"
  hmac_secret           = "0123456789abcdef0123456789abcdef0123456789abcdef"
  signing_key_pem       = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
}

run "existing_vpc_is_used_as_given" {
  command = plan
  variables {
    vpc_id             = "vpc-0123456789abcdef0"
    public_subnet_ids  = ["subnet-0a000000000000001", "subnet-0a000000000000002"]
    private_subnet_ids = ["subnet-0b000000000000001", "subnet-0b000000000000002"]
  }
  assert {
    condition     = length(aws_vpc.main) == 0 && length(aws_subnet.public) == 0 && length(aws_nat_gateway.main) == 0 && length(aws_flow_log.vpc) == 0
    error_message = "With vpc_id the stack builds no network."
  }
  assert {
    condition     = aws_lb.main.subnets == toset(var.public_subnet_ids) && aws_autoscaling_group.main.vpc_zone_identifier == toset(var.private_subnet_ids)
    error_message = "The ALB and the instances use the given subnets."
  }
  assert {
    condition     = aws_lb_target_group.grpc.vpc_id == var.vpc_id && aws_security_group.instances.vpc_id == var.vpc_id
    error_message = "The target group and the security groups belong to the given VPC."
  }
}

run "internal_load_balancer_sits_in_the_private_subnets" {
  variables {
    internal = true
  }
  assert {
    condition     = aws_lb.main.internal && aws_lb.main.subnets == toset(aws_subnet.private[*].id)
    error_message = "An internal ALB in the private subnets."
  }
}

run "matcher_and_drain_are_configurable" {
  command = plan
  variables {
    health_check_matcher = "0,14"
    drain_seconds        = 20
    shutdown_grace       = 30
    grpc_port            = 6000
  }
  assert {
    condition     = aws_lb_target_group.grpc.health_check[0].matcher == "0,14" && tonumber(aws_lb_target_group.grpc.deregistration_delay) == 65
    error_message = "The matcher is passed on, and the deregistration delay follows drain and grace."
  }
  assert {
    condition     = aws_lb_target_group.grpc.port == 6000 && aws_vpc_security_group_ingress_rule.instances_grpc.from_port == 6000 && output.deploy_vars.usermgmt_listen_port == 6000
    error_message = "One port for the server, the target group and the security group."
  }
  assert {
    condition     = output.deploy_vars.usermgmt_drain_seconds == 20 && output.deploy_vars.usermgmt_shutdown_grace == 30
    error_message = "The server drains as long as the target group expects."
  }
}

run "matcher_must_be_grpc_codes" {
  command = plan
  variables {
    health_check_matcher = "200"
  }
  expect_failures = [var.health_check_matcher]
}

run "matcher_range_must_ascend" {
  command = plan
  variables {
    health_check_matcher = "12-3"
  }
  expect_failures = [var.health_check_matcher]
}

run "matcher_must_not_be_http_ranges" {
  command = plan
  variables {
    health_check_matcher = "200-299"
  }
  expect_failures = [var.health_check_matcher]
}

run "grpc_port_must_be_unprivileged" {
  command = plan
  variables {
    grpc_port = 80
  }
  expect_failures = [var.grpc_port]
}

run "grpc_port_must_be_a_port" {
  command = plan
  variables {
    grpc_port = 70000
  }
  expect_failures = [var.grpc_port]
}

run "certificate_must_be_an_acm_arn" {
  command = plan
  variables {
    certificate_arn = "arn:aws:iam::123456789012:server-certificate/usermgmt"
  }
  expect_failures = [var.certificate_arn]
}

run "release_must_not_break_the_user_data_quoting" {
  command = plan
  variables {
    release_s3_uri = "s3://usermgmt-releases/it's/"
  }
  expect_failures = [var.release_s3_uri]
}

run "alarm_actions_must_be_arns" {
  command = plan
  variables {
    alarm_actions = ["ops@example.com"]
  }
  expect_failures = [var.alarm_actions]
}

run "release_must_be_an_s3_prefix" {
  command = plan
  variables {
    release_s3_uri = "https://example.com/usermgmt/"
  }
  expect_failures = [var.release_s3_uri]
}

run "idle_timeout_must_stay_below_the_servers" {
  command = plan
  variables {
    alb_idle_timeout = 75
  }
  expect_failures = [var.alb_idle_timeout]
}

run "health_check_timeout_must_be_shorter_than_interval" {
  command = plan
  variables {
    health_check_interval = 10
    health_check_timeout  = 10
  }
  expect_failures = [var.health_check_timeout]
}

run "existing_vpc_needs_two_subnets_of_each" {
  command = plan
  variables {
    vpc_id             = "vpc-0123456789abcdef0"
    public_subnet_ids  = ["subnet-0a000000000000001"]
    private_subnet_ids = ["subnet-0b000000000000001", "subnet-0b000000000000002"]
  }
  expect_failures = [var.public_subnet_ids]
}

run "secrets_stay_out_of_the_environment" {
  command = plan
  variables {
    extra_environment = { USERMGMT_HMAC_SECRET = "0123456789abcdef0123456789abcdef" }
  }
  expect_failures = [var.extra_environment]
}

run "extra_environment_takes_service_settings_only" {
  command = plan
  variables {
    extra_environment = { PATH = "/tmp" }
  }
  expect_failures = [var.extra_environment]
}

run "signing_key_must_be_a_pem" {
  command = plan
  variables {
    signing_key_pem = "not a key"
  }
  expect_failures = [var.signing_key_pem]
}

run "hmac_secret_must_be_long_enough" {
  command = plan
  variables {
    hmac_secret = "short"
  }
  expect_failures = [var.hmac_secret]
}

run "name_must_fit_the_resource_names" {
  command = plan
  variables {
    name = "User_Mgmt"
  }
  expect_failures = [var.name]
}
