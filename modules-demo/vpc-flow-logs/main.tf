# Demo twin of modules/vpc-flow-logs: the flow log's ID is derived from the VPC's.

terraform {
  required_version = ">= 1.0"
}

locals {
  log_group = "/vpc-flow-logs/${var.name}"
}
