mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  region                = "eu-west-1"
  certificate_arn       = "arn:aws:acm:eu-west-1:123456789012:certificate/0f4b1b6c-1111-2222-3333-444455556666"
  release_s3_uri        = "s3://usermgmt-releases/1.0.0/"
  notifier_from_address = "no-reply@example.com"
  hmac_secret           = "0123456789abcdef0123456789abcdef0123456789abcdef"
  signing_key_pem       = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
}

run "plan" {
  command = plan
}

run "apply" {
  command = apply
}
