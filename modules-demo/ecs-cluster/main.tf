# Demo twin of modules/ecs-cluster: the cluster is named, its IDs derived from the inputs.

terraform {
  required_version = ">= 1.0"
}

locals {
  id = substr(sha1("${var.cluster_name}/${var.vpc_id}/${join(",", var.subnet_ids)}"), 0, 17)
}
