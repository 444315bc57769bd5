# The service's DynamoDB table and its secrets. The table mirrors table_definition() in
# server/src/usermgmt_server/adapters/dynamodb/schema.py (tests/deploy compares the two).

locals {
  list_index = "users-by-shard"
}

resource "aws_dynamodb_table" "main" {
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "gsi1pk"
    type = "S"
  }
  attribute {
    name = "gsi1sk"
    type = "S"
  }

  # Sparse: only user items carry gsi1pk (USERS#<shard>) and gsi1sk (the user id).
  global_secondary_index {
    name            = local.list_index
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "ALL"
  }

  # Codes, refresh tokens, idempotency records, sign-in counters, leases and notifier markers
  # expire through this attribute (epoch seconds).
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# The secrets the Ansible role reads at boot (usermgmt_ssm_*_parameter). Their values come from
# ephemeral variables into write-only arguments: sent to SSM when the parameter is created or
# its version raised, never stored in the Terraform state or plan.

resource "aws_ssm_parameter" "signing_key" {
  name             = local.signing_key_param
  description      = "usermgmt ${var.name}: PEM of the ES256 access-token signing key"
  type             = "SecureString"
  key_id           = aws_kms_key.main.arn
  value_wo         = var.signing_key_pem
  value_wo_version = var.signing_key_version
}

resource "aws_ssm_parameter" "hmac_secret" {
  name             = local.hmac_secret_param
  description      = "usermgmt ${var.name}: HMAC secret of page tokens and idempotency fingerprints"
  type             = "SecureString"
  key_id           = aws_kms_key.main.arn
  value_wo         = var.hmac_secret
  value_wo_version = var.hmac_secret_version
}
