output "grpc_endpoint" {
  description = "host:port clients dial (TLS), e.g. grpcurl <endpoint> list."
  value       = "${aws_lb.main.dns_name}:${var.listener_port}"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer (point a CNAME or alias record of the certificate's name at it)."
  value       = aws_lb.main.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone of the load balancer, for an alias record."
  value       = aws_lb.main.zone_id
}

output "target_group_arn" {
  description = "The gRPC target group."
  value       = aws_lb_target_group.grpc.arn
}

output "autoscaling_group_name" {
  description = "The instances' Auto Scaling group (inventory/aws_ec2.yml's filter for rollout.yml)."
  value       = aws_autoscaling_group.main.name
}

output "table_name" {
  description = "USERMGMT_TABLE_NAME."
  value       = aws_dynamodb_table.main.name
}

output "table_arn" {
  description = "ARN of the DynamoDB table."
  value       = aws_dynamodb_table.main.arn
}

output "topic_arn" {
  description = "USERMGMT_TOPIC_ARN: the event topic."
  value       = aws_sns_topic.events.arn
}

output "notification_queue_url" {
  description = "USERMGMT_NOTIFIER_QUEUE_URL: the notifier's queue."
  value       = aws_sqs_queue.notifications.url
}

output "notification_dlq_url" {
  description = "The notifier's dead-letter queue."
  value       = aws_sqs_queue.notifications_dlq.url
}

output "signing_key_parameter" {
  description = "SSM SecureString parameter of the signing key (usermgmt_ssm_signing_key_parameter)."
  value       = aws_ssm_parameter.signing_key.name
}

output "hmac_secret_parameter" {
  description = "SSM SecureString parameter of the HMAC secret (usermgmt_ssm_hmac_secret_parameter)."
  value       = aws_ssm_parameter.hmac_secret.name
}

output "log_group_name" {
  description = "CloudWatch Logs group of both services (usermgmt_log_group)."
  value       = aws_cloudwatch_log_group.services.name
}

output "instance_role_arn" {
  description = "IAM role of the instances."
  value       = aws_iam_role.instances.arn
}

output "kms_key_arn" {
  description = "KMS key of the table, topic, queues, logs and parameters."
  value       = aws_kms_key.main.arn
}

output "vpc_id" {
  description = "VPC of the stack (created or given)."
  value       = local.vpc_id
}

output "deploy_vars" {
  description = "The Ansible role's variables written to /etc/usermgmt/deploy-vars.json on every instance."
  value       = local.deploy_vars
}
