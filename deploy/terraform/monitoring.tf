# Logs and alarms. The Ansible role's CloudWatch agent ships both services' JSON log lines to
# the log group ({instance_id}/usermgmt-server and {instance_id}/usermgmt-notifier streams).

resource "aws_cloudwatch_log_group" "services" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

locals {
  metric_namespace = "usermgmt/${var.name}"
}

# The outbox sweeper logs {"message": "outbox backlog", "outbox_backlog": N, "outbox_age_s": S}
# on every sweep (every USERMGMT_OUTBOX_SWEEP_INTERVAL, by the instance holding the lease).
resource "aws_cloudwatch_log_metric_filter" "outbox_backlog" {
  name           = "${var.name}-outbox-backlog"
  log_group_name = aws_cloudwatch_log_group.services.name
  pattern        = "{ $.message = \"outbox backlog\" }"

  metric_transformation {
    name      = "OutboxBacklog"
    namespace = local.metric_namespace
    value     = "$.outbox_backlog"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_log_metric_filter" "outbox_age" {
  name           = "${var.name}-outbox-age"
  log_group_name = aws_cloudwatch_log_group.services.name
  pattern        = "{ $.message = \"outbox backlog\" }"

  metric_transformation {
    name      = "OutboxOldestEventAge"
    namespace = local.metric_namespace
    value     = "$.outbox_age_s"
    unit      = "Seconds"
  }
}

locals {
  alb_dimensions = { LoadBalancer = aws_lb.main.arn_suffix }
  target_group_dimensions = {
    LoadBalancer = aws_lb.main.arn_suffix
    TargetGroup  = aws_lb_target_group.grpc.arn_suffix
  }

  # Every alarm, by name: metric, statistic, threshold, evaluation and what missing data means.
  alarms = {
    alb-5xx = {
      description = "The load balancer answered 5xx itself (no healthy target, target unreachable or timing out)."
      namespace   = "AWS/ApplicationELB", metric = "HTTPCode_ELB_5XX_Count", statistic = "Sum"
      dimensions  = local.alb_dimensions, threshold = var.alb_5xx_threshold, periods = 3, missing = "notBreaching"
    }
    target-5xx = {
      description = "Instances answered with HTTP 5xx (not gRPC errors, which travel in trailers with HTTP 200)."
      namespace   = "AWS/ApplicationELB", metric = "HTTPCode_Target_5XX_Count", statistic = "Sum"
      dimensions  = local.target_group_dimensions, threshold = var.alb_5xx_threshold, periods = 3, missing = "notBreaching"
    }
    unhealthy-hosts = {
      description = "Instances fail the ProbeService/Ready health check (draining, or DynamoDB unreachable)."
      namespace   = "AWS/ApplicationELB", metric = "UnHealthyHostCount", statistic = "Maximum"
      dimensions  = local.target_group_dimensions, threshold = 0, periods = 3, missing = "notBreaching"
    }
    dynamodb-read-throttles = {
      description = "DynamoDB throttled reads of the table."
      namespace   = "AWS/DynamoDB", metric = "ReadThrottleEvents", statistic = "Sum"
      dimensions  = { TableName = aws_dynamodb_table.main.name }, threshold = 0, periods = 2, missing = "notBreaching"
    }
    dynamodb-write-throttles = {
      description = "DynamoDB throttled writes to the table."
      namespace   = "AWS/DynamoDB", metric = "WriteThrottleEvents", statistic = "Sum"
      dimensions  = { TableName = aws_dynamodb_table.main.name }, threshold = 0, periods = 2, missing = "notBreaching"
    }
    notifications-dlq = {
      description = "Notification requests were given up (malformed, or failed maxReceiveCount times) and wait in the dead-letter queue."
      namespace   = "AWS/SQS", metric = "ApproximateNumberOfMessagesVisible", statistic = "Maximum"
      dimensions  = { QueueName = aws_sqs_queue.notifications_dlq.name }, threshold = 0, periods = 1, missing = "notBreaching"
    }
    outbox-backlog = {
      description = "Events wait in the outbox: SNS publication fails or falls behind."
      namespace   = local.metric_namespace, metric = "OutboxBacklog", statistic = "Maximum"
      dimensions  = {}, threshold = var.outbox_backlog_threshold, periods = 3, missing = "notBreaching"
    }
    outbox-age = {
      description = "The oldest event in the outbox is older than the threshold: publication is stuck."
      namespace   = local.metric_namespace, metric = "OutboxOldestEventAge", statistic = "Maximum"
      dimensions  = {}, threshold = var.outbox_age_threshold, periods = 3, missing = "notBreaching"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "main" {
  for_each = local.alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  dimensions          = each.value.dimensions
  period              = 60
  evaluation_periods  = each.value.periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = each.value.missing
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  depends_on = [aws_cloudwatch_log_metric_filter.outbox_backlog, aws_cloudwatch_log_metric_filter.outbox_age]
}
