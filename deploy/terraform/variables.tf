# ---------------------------------------------------------------------------------------------
# Stack
# ---------------------------------------------------------------------------------------------

variable "name" {
  description = "Name of the stack; prefixes every resource name (the table, topic, queues, ALB, group)."
  type        = string
  default     = "usermgmt"

  validation {
    # The ALB and target group names allow 32 characters; "-dlq" and similar suffixes need room.
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name))
    error_message = "name must be 3 to 24 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the stack."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "tags" {
  description = "Tags added to every resource (with Application and Stack)."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Network: a new VPC across availability zones, or an existing one
# ---------------------------------------------------------------------------------------------

variable "vpc_id" {
  description = "Existing VPC to use; null creates a VPC with public and private subnets."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "public_subnet_ids" {
  description = "Subnets of the ALB in the existing VPC (with vpc_id), in at least two availability zones."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.public_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "public_subnet_ids must be subnet ids (subnet-...)."
  }
  validation {
    condition     = var.vpc_id == null ? length(var.public_subnet_ids) == 0 : length(var.public_subnet_ids) >= 2
    error_message = "With vpc_id give at least two public_subnet_ids; without it give none."
  }
}

variable "private_subnet_ids" {
  description = "Subnets of the instances in the existing VPC (with vpc_id), with a route to the AWS APIs and to the release bucket."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "private_subnet_ids must be subnet ids (subnet-...)."
  }
  validation {
    condition     = var.vpc_id == null ? length(var.private_subnet_ids) == 0 : length(var.private_subnet_ids) >= 2
    error_message = "With vpc_id give at least two private_subnet_ids; without it give none."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the new VPC; each availability zone gets a /20 public and a /20 private subnet of it."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 18
    error_message = "vpc_cidr must be an IPv4 CIDR block of /18 or larger."
  }
}

variable "availability_zones" {
  description = "Availability zones of the new VPC; null takes the first az_count zones of the region."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null || length(coalesce(var.availability_zones, [])) >= 2
    error_message = "Give at least two availability_zones."
  }
}

variable "az_count" {
  description = "Number of availability zones of the new VPC when availability_zones is null."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4 && floor(var.az_count) == var.az_count
    error_message = "az_count must be 2, 3 or 4."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheaper); false puts one in every availability zone."
  type        = bool
  default     = true
}

variable "flow_log_retention_days" {
  description = "Days the new VPC's flow logs are kept."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ...)."
  }
}

# ---------------------------------------------------------------------------------------------
# Load balancer
# ---------------------------------------------------------------------------------------------

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener (gRPC through an ALB needs HTTPS)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)."
  }
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"

  validation {
    condition     = startswith(var.ssl_policy, "ELBSecurityPolicy-TLS13-") || startswith(var.ssl_policy, "ELBSecurityPolicy-FS-1-2-")
    error_message = "ssl_policy must allow TLS 1.2 and newer only (ELBSecurityPolicy-TLS13-* or ELBSecurityPolicy-FS-1-2-*)."
  }
}

variable "internal" {
  description = "Internal load balancer (reachable only inside the VPC)."
  type        = bool
  default     = false
}

variable "allowed_cidrs" {
  description = "Client networks allowed to reach the HTTPS listener."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.allowed_cidrs) > 0 && alltrue([for cidr in var.allowed_cidrs : can(cidrhost(cidr, 0))])
    error_message = "allowed_cidrs must be a non-empty list of IPv4 CIDR blocks."
  }
}

variable "listener_port" {
  description = "Port of the HTTPS listener."
  type        = number
  default     = 443

  validation {
    condition     = var.listener_port >= 1 && var.listener_port <= 65535 && floor(var.listener_port) == var.listener_port
    error_message = "listener_port must be a port number (1-65535)."
  }
}

variable "alb_idle_timeout" {
  description = "Seconds the ALB keeps an idle connection; must stay below the server's USERMGMT_MAX_CONNECTION_IDLE (75 s) so that the balancer closes first."
  type        = number
  default     = 60

  validation {
    condition     = var.alb_idle_timeout >= 1 && var.alb_idle_timeout < 75
    error_message = "alb_idle_timeout must be 1 to 74 seconds (below the server's 75 s idle timeout)."
  }
}

variable "alb_deletion_protection" {
  description = "Deletion protection of the load balancer."
  type        = bool
  default     = true
}

variable "alb_access_logs_bucket" {
  description = "S3 bucket for the ALB's access logs (with the ELB log delivery policy); null sends none."
  type        = string
  default     = null

  validation {
    condition     = var.alb_access_logs_bucket == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", coalesce(var.alb_access_logs_bucket, "x")))
    error_message = "alb_access_logs_bucket must be an S3 bucket name."
  }
}

variable "waf_web_acl_arn" {
  description = "WAFv2 web ACL to associate with the ALB; null associates none."
  type        = string
  default     = null

  validation {
    condition     = var.waf_web_acl_arn == null || can(regex("^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:[0-9]{12}:regional/webacl/.+$", coalesce(var.waf_web_acl_arn, "x")))
    error_message = "waf_web_acl_arn must be a regional WAFv2 web ACL ARN."
  }
}

# ---------------------------------------------------------------------------------------------
# gRPC target group and health check
# ---------------------------------------------------------------------------------------------

variable "grpc_port" {
  description = "Port the server listens on (USERMGMT_LISTEN_ADDRESS) and the target group sends to."
  type        = number
  default     = 50051

  validation {
    condition     = var.grpc_port >= 1024 && var.grpc_port <= 65535 && floor(var.grpc_port) == var.grpc_port
    error_message = "grpc_port must be an unprivileged port (1024-65535)."
  }
}

variable "health_check_matcher" {
  description = "gRPC status codes the health check accepts from ProbeService/Ready (0 = OK only)."
  type        = string
  default     = "0"

  validation {
    # The ALB takes gRPC codes 0-99: single codes, ranges and lists ("0", "0-5", "0,12").
    condition = can(regex("^[0-9]{1,2}(-[0-9]{1,2})?(,[0-9]{1,2}(-[0-9]{1,2})?)*$", var.health_check_matcher)) && alltrue([
      for range in split(",", var.health_check_matcher) :
      tonumber(split("-", range)[0]) <= tonumber(element(split("-", range), length(split("-", range)) - 1))
    ])
    error_message = "health_check_matcher must be gRPC status codes 0-99: a code, a range or a comma-separated list (\"0\", \"0-5\", \"0,12\")."
  }
}

variable "health_check_interval" {
  description = "Seconds between health checks of an instance."
  type        = number
  default     = 10

  validation {
    condition     = var.health_check_interval >= 5 && var.health_check_interval <= 300
    error_message = "health_check_interval must be 5 to 300 seconds."
  }
}

variable "health_check_timeout" {
  description = "Seconds a health check waits for the probe's answer."
  type        = number
  default     = 5

  validation {
    condition     = var.health_check_timeout >= 2 && var.health_check_timeout <= 120
    error_message = "health_check_timeout must be 2 to 120 seconds."
  }
  validation {
    condition     = var.health_check_timeout < var.health_check_interval
    error_message = "health_check_timeout must be shorter than health_check_interval."
  }
}

variable "healthy_threshold" {
  description = "Consecutive successful checks that make an instance healthy."
  type        = number
  default     = 2

  validation {
    condition     = var.healthy_threshold >= 2 && var.healthy_threshold <= 10
    error_message = "healthy_threshold must be 2 to 10."
  }
}

variable "unhealthy_threshold" {
  description = "Consecutive failed checks that make an instance unhealthy."
  type        = number
  default     = 2

  validation {
    condition     = var.unhealthy_threshold >= 2 && var.unhealthy_threshold <= 10
    error_message = "unhealthy_threshold must be 2 to 10."
  }
}

variable "deregistration_margin" {
  description = "Seconds added to the server's drain and shutdown grace to give the target group's deregistration delay."
  type        = number
  default     = 15

  validation {
    condition     = var.deregistration_margin >= 0 && var.deregistration_margin <= 300
    error_message = "deregistration_margin must be 0 to 300 seconds."
  }
}

# ---------------------------------------------------------------------------------------------
# The service on the instances (written to /etc/usermgmt/deploy-vars.json for the Ansible role)
# ---------------------------------------------------------------------------------------------

variable "drain_seconds" {
  description = "USERMGMT_DRAIN_SECONDS: seconds a stopping server reports NOT_SERVING before it stops accepting calls."
  type        = number
  default     = 5

  validation {
    condition     = var.drain_seconds >= 0 && var.drain_seconds <= 300
    error_message = "drain_seconds must be 0 to 300."
  }
}

variable "shutdown_grace" {
  description = "USERMGMT_SHUTDOWN_GRACE: seconds in-flight calls get to finish after draining."
  type        = number
  default     = 10

  validation {
    condition     = var.shutdown_grace >= 0 && var.shutdown_grace <= 300
    error_message = "shutdown_grace must be 0 to 300."
  }
}

variable "workers" {
  description = "Server worker processes per instance; 0 starts one per CPU."
  type        = number
  default     = 0

  validation {
    condition     = var.workers >= 0 && var.workers <= 256 && floor(var.workers) == var.workers
    error_message = "workers must be a whole number from 0 to 256."
  }
}

variable "log_level" {
  description = "USERMGMT_LOG_LEVEL of the server and the notifier."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "notifier_from_address" {
  description = "Sender address of the notifier's e-mails (USERMGMT_NOTIFIER_FROM_ADDRESS); SES must have it or its domain verified."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$", var.notifier_from_address))
    error_message = "notifier_from_address must be an e-mail address."
  }
}

variable "ses_identity" {
  description = "SES identity (domain or address) the notifier may send from; null takes the domain of notifier_from_address."
  type        = string
  default     = null
}

variable "sms_enabled" {
  description = "Let the notifier send text messages through SNS (sns:Publish to phone numbers)."
  type        = bool
  default     = true
}

variable "extra_environment" {
  description = "Other USERMGMT_* or AWS_* settings of the services (no secrets: they go into the environment file)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key in keys(var.extra_environment) : can(regex("^(USERMGMT|AWS)_[A-Z0-9_]+$", key))])
    error_message = "extra_environment takes only USERMGMT_* and AWS_* names."
  }
  validation {
    condition = length(setintersection(keys(var.extra_environment), [
      "USERMGMT_JWT_PRIVATE_KEY", "USERMGMT_HMAC_SECRET", "USERMGMT_BOOTSTRAP_ADMIN_PASSWORD",
    ])) == 0
    error_message = "Secrets do not belong in extra_environment: the signing key and HMAC secret come from SSM."
  }
}

# ---------------------------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------------------------

variable "release_s3_uri" {
  description = "S3 prefix of the release: usermgmt_server-*.whl, usermgmt_client-*.whl and usermgmt-ansible.tar.gz (see README)."
  type        = string

  validation {
    # The user data quotes it in single quotes: no quotes, spaces or wildcards.
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([A-Za-z0-9_.+=@,!()/-]+/)?$", var.release_s3_uri))
    error_message = "release_s3_uri must be s3://BUCKET/ or s3://BUCKET/PREFIX/ (ending in a slash; letters, digits and _.+=@,!()/- only)."
  }
}

variable "ansible_version" {
  description = "Version of the ansible package (ansible-core with the amazon.aws collection) the instances run the role with."
  type        = string
  default     = "12.3.0"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.ansible_version))
    error_message = "ansible_version must be a version number such as 12.3.0."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the servers (x86_64 unless ami_id/ami_ssm_parameter name an arm64 image)."
  type        = string
  default     = "c7i.large"
}

variable "ami_id" {
  description = "AMI of the instances; null takes the latest Amazon Linux 2023 from ami_ssm_parameter."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", coalesce(var.ami_id, "x")))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter naming the AMI when ami_id is null (the role expects Amazon Linux or Debian)."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

variable "root_volume_size" {
  description = "GiB of the instances' encrypted root volume."
  type        = number
  default     = 20

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 1024
    error_message = "root_volume_size must be 8 to 1024 GiB."
  }
}

variable "min_size" {
  description = "Fewest instances in the Auto Scaling group."
  type        = number
  default     = 2

  validation {
    condition     = var.min_size >= 0
    error_message = "min_size must not be negative."
  }
}

variable "max_size" {
  description = "Most instances in the Auto Scaling group."
  type        = number
  default     = 6

  validation {
    condition     = var.max_size >= var.min_size && var.max_size >= 1
    error_message = "max_size must be at least 1 and at least min_size."
  }
}

variable "desired_capacity" {
  description = "Instances the group starts with; null leaves it to min_size and the scaling policy."
  type        = number
  default     = null

  validation {
    condition     = var.desired_capacity == null || (coalesce(var.desired_capacity, 0) >= var.min_size && coalesce(var.desired_capacity, 0) <= var.max_size)
    error_message = "desired_capacity must lie between min_size and max_size."
  }
}

variable "health_check_grace_period" {
  description = "Seconds after launch before the group acts on the target group's health checks (bootstrap: packages, wheels, role)."
  type        = number
  default     = 600

  validation {
    condition     = var.health_check_grace_period >= 0 && var.health_check_grace_period <= 7200
    error_message = "health_check_grace_period must be 0 to 7200 seconds."
  }
}

variable "instance_warmup" {
  description = "Seconds from launch until a new instance counts for scaling and instance refresh: the bootstrap (packages, wheels, role) and the first healthy checks."
  type        = number
  default     = 300

  validation {
    condition     = var.instance_warmup >= 0 && var.instance_warmup <= 3600
    error_message = "instance_warmup must be 0 to 3600 seconds."
  }
}

variable "instance_refresh" {
  description = "Replace the instances in rolling batches when the launch template changes. AWS always has instance refresh; turn it off only for emulators without it (moto)."
  type        = bool
  default     = true
}

variable "instance_refresh_min_healthy_percentage" {
  description = "Share of the group that stays in service during an instance refresh."
  type        = number
  default     = 100

  validation {
    condition     = var.instance_refresh_min_healthy_percentage >= 0 && var.instance_refresh_min_healthy_percentage <= 100
    error_message = "instance_refresh_min_healthy_percentage must be 0 to 100."
  }
}

variable "cpu_target" {
  description = "Average CPU utilisation (percent) the target tracking policy keeps the group at."
  type        = number
  default     = 60

  validation {
    condition     = var.cpu_target >= 10 && var.cpu_target <= 90
    error_message = "cpu_target must be 10 to 90 percent."
  }
}

variable "ssm_managed_instance_core" {
  description = "Attach AmazonSSMManagedInstanceCore to the instance role (Session Manager instead of SSH)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Data, messaging and secrets
# ---------------------------------------------------------------------------------------------

variable "deletion_protection" {
  description = "Deletion protection of the DynamoDB table."
  type        = bool
  default     = true
}

variable "max_receive_count" {
  description = "Receives of a notification request before the queue moves it to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number from 1 to 1000."
  }
}

variable "notifier_visibility_timeout" {
  description = "Seconds a received notification request stays hidden (the queue's and the notifier's USERMGMT_NOTIFIER_VISIBILITY_TIMEOUT)."
  type        = number
  default     = 30

  validation {
    condition     = var.notifier_visibility_timeout >= 10 && var.notifier_visibility_timeout <= 43200
    error_message = "notifier_visibility_timeout must be 10 to 43200 seconds."
  }
}

variable "signing_key_pem" {
  description = "PEM (PKCS#8) of the P-256 key that signs access tokens. Written to SSM when the parameter is created or signing_key_version changes, never stored in the state; every run needs a value (see README: read it back from SSM)."
  type        = string
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = can(regex("^\\s*-----BEGIN PRIVATE KEY-----[A-Za-z0-9+/=\\s]+-----END PRIVATE KEY-----\\s*$", var.signing_key_pem))
    error_message = "signing_key_pem must be a PKCS#8 PEM (openssl ecparam -name prime256v1 -genkey | openssl pkcs8 -topk8 -nocrypt)."
  }
}

variable "signing_key_version" {
  description = "Raise to write a new signing_key_pem to SSM."
  type        = number
  default     = 1
}

variable "hmac_secret" {
  description = "HMAC secret, at least 32 characters (openssl rand -hex 32). Written to SSM when the parameter is created or hmac_secret_version changes, never stored in the state; every run needs a value (see README: read it back from SSM)."
  type        = string
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = length(var.hmac_secret) >= 32
    error_message = "hmac_secret must be at least 32 characters."
  }
}

variable "hmac_secret_version" {
  description = "Raise to write a new hmac_secret to SSM (invalidates page tokens and idempotency fingerprints)."
  type        = number
  default     = 1
}

# ---------------------------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------------------------

variable "log_retention_days" {
  description = "Days the services' logs are kept in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ...)."
  }
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires or clears (SNS topics, usually)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.alarm_actions : can(regex("^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{0,12}:.+$", arn))])
    error_message = "alarm_actions must be ARNs."
  }
}

variable "alb_5xx_threshold" {
  description = "5xx answers per minute (from the ALB itself, or from the targets) that raise an alarm."
  type        = number
  default     = 10
}

variable "outbox_backlog_threshold" {
  description = "Events waiting in the outbox that raise an alarm."
  type        = number
  default     = 100
}

variable "outbox_age_threshold" {
  description = "Age in seconds of the oldest event in the outbox that raises an alarm."
  type        = number
  default     = 300
}
