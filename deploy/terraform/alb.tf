# The Application Load Balancer: HTTPS (gRPC needs it) in front of a gRPC target group whose
# health check calls the readiness probe, which fails while an instance drains or cannot reach
# DynamoDB. The ALB judges gRPC health checks by status code only, hence the probe rather than
# grpc.health.v1.Health/Check (which answers OK with NOT_SERVING in the body).

resource "aws_lb" "main" {
  #checkov:skip=CKV2_AWS_28:A WAF web ACL is optional (waf_web_acl_arn); gRPC bodies are protobuf, which most managed rules cannot inspect.
  #checkov:skip=CKV2_AWS_76:Follows CKV2_AWS_28: no web ACL is attached by default; one given in waf_web_acl_arn should include AWSManagedRulesKnownBadInputsRuleSet.
  #checkov:skip=CKV_AWS_91:Access logs need a bucket with the ELB delivery policy; set alb_access_logs_bucket to turn them on.
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = var.internal
  subnets                    = var.internal ? local.private_subnet_ids : local.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
  idle_timeout               = var.alb_idle_timeout
  enable_http2               = true
  desync_mitigation_mode     = "strictest"

  dynamic "access_logs" {
    for_each = var.alb_access_logs_bucket == null ? [] : [var.alb_access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = var.name
      enabled = true
    }
  }
}

resource "aws_wafv2_web_acl_association" "alb" {
  count        = var.waf_web_acl_arn == null ? 0 : 1
  resource_arn = aws_lb.main.arn
  web_acl_arn  = var.waf_web_acl_arn
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.main.arn
  port              = var.listener_port
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.grpc.arn
  }
}

resource "aws_lb_target_group" "grpc" {
  #checkov:skip=CKV_AWS_378:The instances serve gRPC over cleartext HTTP/2 inside the VPC, reachable only from the ALB's security group; TLS ends at the HTTPS listener.
  # A name prefix, since changing the protocol version replaces the target group and the new
  # one must exist before the listener moves to it.
  name_prefix          = "${substr(var.name, 0, 5)}-"
  vpc_id               = local.vpc_id
  target_type          = "instance"
  protocol             = "HTTP"
  protocol_version     = "GRPC"
  port                 = var.grpc_port
  deregistration_delay = local.deregistration_delay
  # Calls differ widely in cost (an Argon2id sign-in against a read): send each to the instance
  # with the fewest calls in flight rather than in turn.
  load_balancing_algorithm_type = "least_outstanding_requests"

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = local.probe_path
    matcher             = var.health_check_matcher
    interval            = var.health_check_interval
    timeout             = var.health_check_timeout
    healthy_threshold   = var.healthy_threshold
    unhealthy_threshold = var.unhealthy_threshold
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "alb" {
  name_prefix = "${var.name}-alb-"
  description = "usermgmt ${var.name} load balancer: HTTPS from clients, gRPC to the instances"
  vpc_id      = local.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS (gRPC) from clients"
  ip_protocol       = "tcp"
  from_port         = var.listener_port
  to_port           = var.listener_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_instances" {
  security_group_id            = aws_security_group.alb.id
  description                  = "gRPC calls and health checks to the instances"
  ip_protocol                  = "tcp"
  from_port                    = var.grpc_port
  to_port                      = var.grpc_port
  referenced_security_group_id = aws_security_group.instances.id
}
