# Demo twin of modules/cross-account-iam-roles: role ARNs in the trusting account, named from the inputs.

terraform {
  required_version = ">= 1.0"
}

locals {
  # The demo has no account of its own here: the roles' account is a placeholder.
  roles = var.trusted_account_id == null ? {} : var.roles
}
