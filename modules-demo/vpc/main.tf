# Demo twin of modules/vpc: no resources, stable made-up IDs derived from the inputs.

terraform {
  required_version = ">= 1.0"
}

locals {
  id    = substr(sha1("${var.vpc_name}/${var.cidr_block}"), 0, 17)
  zones = range(var.num_availability_zones)
}
