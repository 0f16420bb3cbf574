# Demo twin of modules/kms-admin: the key's ARN is derived from the administrators' account.

terraform {
  required_version = ">= 1.0"
}

locals {
  account = split(":", var.cmk_administrator_iam_arns[0])[4]
  key_id  = join("-", regex("^(.{8})(.{4})(.{4})(.{4})(.{12})", sha1(var.name)))
}
