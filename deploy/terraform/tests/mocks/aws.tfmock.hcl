# Values of the mock AWS provider shared by the tests. Computed ARNs must look like ARNs: the
# provider validates the ARN arguments that receive them during apply.

mock_data "aws_caller_identity" {
  defaults = { account_id = "123456789012", arn = "arn:aws:iam::123456789012:user/terraform" }
}

mock_data "aws_partition" {
  defaults = { partition = "aws", dns_suffix = "amazonaws.com" }
}

mock_data "aws_availability_zones" {
  defaults = { names = ["eu-west-1a", "eu-west-1b", "eu-west-1c"] }
}

mock_data "aws_ssm_parameter" {
  defaults = { value = "ami-0123456789abcdef0", insecure_value = "ami-0123456789abcdef0" }
}

mock_data "aws_ami" {
  defaults = { root_device_name = "/dev/xvda" }
}

mock_resource "aws_kms_key" {
  defaults = {
    arn    = "arn:aws:kms:eu-west-1:123456789012:key/0b7c1a4e-0000-4000-8000-000000000001"
    key_id = "0b7c1a4e-0000-4000-8000-000000000001"
  }
}

mock_resource "aws_dynamodb_table" {
  defaults = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/usermgmt" }
}

mock_resource "aws_sns_topic" {
  defaults = { arn = "arn:aws:sns:eu-west-1:123456789012:usermgmt-events" }
}

mock_resource "aws_sqs_queue" {
  defaults = {
    arn = "arn:aws:sqs:eu-west-1:123456789012:usermgmt-notifications"
    id  = "https://sqs.eu-west-1.amazonaws.com/123456789012/usermgmt-notifications"
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/usermgmt-notifications"
  }
}

mock_resource "aws_ssm_parameter" {
  defaults = { arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/usermgmt/secret" }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/usermgmt/usermgmt" }
}

mock_resource "aws_iam_role" {
  defaults = { arn = "arn:aws:iam::123456789012:role/usermgmt-instances" }
}

mock_resource "aws_iam_instance_profile" {
  defaults = { arn = "arn:aws:iam::123456789012:instance-profile/usermgmt-instances" }
}

mock_resource "aws_lb" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/usermgmt/0123456789abcdef"
    arn_suffix = "app/usermgmt/0123456789abcdef"
    dns_name   = "usermgmt-123456789.eu-west-1.elb.amazonaws.com"
    zone_id    = "Z32O12XQLNTSW2"
  }
}

mock_resource "aws_lb_target_group" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/userm-0123/0123456789abcdef"
    arn_suffix = "targetgroup/userm-0123/0123456789abcdef"
  }
}

mock_resource "aws_launch_template" {
  defaults = { id = "lt-0123456789abcdef0", latest_version = 1 }
}
