# The instance role: exactly what usermgmt-server, usermgmt-notifier, the bootstrap and the
# CloudWatch agent call, on this stack's resources only.

locals {
  release_path   = split("/", trimprefix(var.release_s3_uri, "s3://"))
  release_bucket = local.release_path[0]
  release_prefix = join("/", slice(local.release_path, 1, length(local.release_path)))
  ses_identity   = coalesce(var.ses_identity, split("@", var.notifier_from_address)[1])

  instances_assume_policy = {
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  }

  instances_policy = {
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          # The server's and the notifier's item operations (transactions need the per-item
          # actions; DescribeTable is the readiness check). No Scan, no table management.
          Sid    = "Table"
          Effect = "Allow"
          Action = [
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
          ]
          Resource = aws_dynamodb_table.main.arn
        },
        {
          Sid      = "ListIndex"
          Effect   = "Allow"
          Action   = "dynamodb:Query"
          Resource = "${aws_dynamodb_table.main.arn}/index/${local.list_index}"
        },
        {
          Sid      = "PublishEvents"
          Effect   = "Allow"
          Action   = "sns:Publish"
          Resource = aws_sns_topic.events.arn
        },
        {
          Sid      = "ReadNotificationRequests"
          Effect   = "Allow"
          Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
          Resource = aws_sqs_queue.notifications.arn
        },
        {
          Sid       = "SendEmail"
          Effect    = "Allow"
          Action    = "ses:SendEmail"
          Resource  = "arn:${local.partition}:ses:${var.region}:${local.account_id}:identity/${local.ses_identity}"
          Condition = { StringEquals = { "ses:FromAddress" = var.notifier_from_address } }
        },
        {
          Sid      = "ReadSecrets"
          Effect   = "Allow"
          Action   = "ssm:GetParameter"
          Resource = [aws_ssm_parameter.signing_key.arn, aws_ssm_parameter.hmac_secret.arn]
        },
        {
          # The key of the table, topic, queue and parameters, only through those services.
          Sid      = "UseKeyThroughServices"
          Effect   = "Allow"
          Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
          Resource = aws_kms_key.main.arn
          Condition = { StringEquals = {
            "kms:ViaService" = [for service in ["dynamodb", "sns", "sqs", "ssm"] : "${service}.${var.region}.amazonaws.com"]
          } }
        },
        {
          Sid      = "ShipLogs"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
          Resource = "${aws_cloudwatch_log_group.services.arn}:*"
        },
        {
          Sid      = "ReadRelease"
          Effect   = "Allow"
          Action   = "s3:GetObject"
          Resource = "arn:${local.partition}:s3:::${local.release_bucket}/${local.release_prefix}*"
        },
        {
          Sid       = "ListRelease"
          Effect    = "Allow"
          Action    = "s3:ListBucket"
          Resource  = "arn:${local.partition}:s3:::${local.release_bucket}"
          Condition = { StringLike = { "s3:prefix" = "${local.release_prefix}*" } }
        },
      ],
      # SMS goes to phone numbers, which are not ARNs: NotResource on every SNS ARN allows
      # exactly those, and no topic other than the one above.
      var.sms_enabled ? [{
        Sid         = "SendSms"
        Effect      = "Allow"
        Action      = "sns:Publish"
        NotResource = "arn:${local.partition}:sns:*:*:*"
      }] : [],
    )
  }
}

resource "aws_iam_role" "instances" {
  name               = "${var.name}-instances"
  description        = "usermgmt ${var.name} server and notifier instances"
  assume_role_policy = jsonencode(local.instances_assume_policy)
}

resource "aws_iam_instance_profile" "instances" {
  name = "${var.name}-instances"
  role = aws_iam_role.instances.name
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  count      = var.ssm_managed_instance_core ? 1 : 0
  role       = aws_iam_role.instances.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy" "instances" {
  name   = "usermgmt"
  role   = aws_iam_role.instances.id
  policy = jsonencode(local.instances_policy)
}
