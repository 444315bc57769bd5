# Events: the SNS topic the server publishes to (outbox relay and sweeper), and the notifier's
# queue with its dead-letter queue and filtered subscription; the same shape as
# ensure_notification_pipeline() in server/src/usermgmt_server/notifier/resources.py.

locals {
  # The notifier's FILTER_POLICY: only notification requests (usermgmt.notification.*).
  notification_filter_policy = { event_type = [{ prefix = "usermgmt.notification." }] }
}

resource "aws_sns_topic" "events" {
  name              = local.topic_name
  kms_master_key_id = aws_kms_key.main.arn
}

resource "aws_sqs_queue" "notifications_dlq" {
  name                      = local.dlq_name
  message_retention_seconds = 14 * 24 * 3600
  kms_master_key_id         = aws_kms_key.main.arn
}

resource "aws_sqs_queue" "notifications" {
  name                       = local.queue_name
  visibility_timeout_seconds = var.notifier_visibility_timeout
  receive_wait_time_seconds  = 20
  kms_master_key_id          = aws_kms_key.main.arn
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.notifications_dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

# Only the event topic may send to the queue (as ensure_notification_pipeline() sets it).
resource "aws_sqs_queue_policy" "notifications" {
  queue_url = aws_sqs_queue.notifications.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AllowNotificationTopic"
      Effect    = "Allow"
      Principal = { Service = "sns.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.notifications.arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_sns_topic.events.arn } }
    }]
  })
}

resource "aws_sns_topic_subscription" "notifications" {
  topic_arn            = aws_sns_topic.events.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.notifications.arn
  raw_message_delivery = true
  filter_policy_scope  = "MessageAttributes"
  filter_policy        = jsonencode(local.notification_filter_policy)

  depends_on = [aws_sqs_queue_policy.notifications]
}
