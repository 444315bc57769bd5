data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Names the code and the Ansible role rely on.
  table_name         = var.name
  topic_name         = "${var.name}-events"
  queue_name         = "${var.name}-notifications"
  dlq_name           = "${local.queue_name}-dlq" # the notifier's convention: <queue>-dlq
  log_group_name     = "/usermgmt/${var.name}"
  ssm_prefix         = "/${var.name}"
  signing_key_param  = "${local.ssm_prefix}/jwt-signing-key"
  hmac_secret_param  = "${local.ssm_prefix}/hmac-secret"
  probe_path         = "/usermgmt.v1.ProbeService/Ready"
  topic_arn          = "arn:${local.partition}:sns:${var.region}:${local.account_id}:${local.topic_name}"
  log_group_arn      = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:${local.log_group_name}"
  flow_log_group_arn = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/vpc-flow-logs/${var.name}"

  # An ALB stops sending new calls at deregistration and waits this long for the calls it has:
  # the server's drain period and shutdown grace, plus a margin.
  deregistration_delay = ceil(var.drain_seconds + var.shutdown_grace + var.deregistration_margin)
}

# One customer managed key encrypts the table, topic, queues, logs and secrets, so that access
# to the data follows the key policy and the instance role.
resource "aws_kms_key" "main" {
  description             = "usermgmt ${var.name}: table, topic, queues, logs and secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = jsonencode(local.kms_policy)
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

locals {
  # Policies are plain JSON (jsonencode) rather than aws_iam_policy_document data sources, so
  # that the tests can read them under a mock provider.
  kms_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministration"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # SNS encrypts what it delivers to the encrypted notification queue.
        Sid       = "EventTopicDelivery"
        Effect    = "Allow"
        Principal = { Service = "sns.amazonaws.com" }
        Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
        Resource  = "*"
        Condition = { ArnEquals = { "aws:SourceArn" = local.topic_arn } }
      },
      {
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = { ArnLike = { "kms:EncryptionContext:aws:logs:arn" = [local.log_group_arn, local.flow_log_group_arn] } }
      },
    ]
  }
}
