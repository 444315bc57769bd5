terraform {
  # 1.11: write-only arguments (value_wo) and ephemeral values keep the secrets out of the state.
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { Application = "usermgmt", Stack = var.name })
  }
}
