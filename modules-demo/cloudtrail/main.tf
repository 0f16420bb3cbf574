# Demo twin of modules/cloudtrail: the trail and bucket ARNs are computed, nothing created.

terraform {
  required_version = ">= 1.0"
}

locals {
  account = split(":", var.kms_key_arn)[4]
}
