# Demo twin of modules/aurora: endpoints derived from the cluster's name; the password is only checked.

terraform {
  required_version = ">= 1.0"
}

locals {
  port   = var.engine == "aurora-postgresql" ? 5432 : 3306
  suffix = substr(sha1(var.name), 0, 12)
  # The demo receives TF_VAR_master_password like the real module; it is never an output.
  password_length = length(var.master_password)
}
