# Demo twin of modules/aws-config: the recorder's role and rules are named, not made.

terraform {
  required_version = ">= 1.0"
}

locals {
  rules = { for r in var.managed_rules : r => "arn:aws:config:demo:000000000000:config-rule/${lower(replace(r, "_", "-"))}" }
}
