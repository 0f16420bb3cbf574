# Demo twin of modules/iam-groups: group and user ARNs computed, nothing created.

terraform {
  required_version = ">= 1.0"
}

locals {
  account = "000000000000"
}
