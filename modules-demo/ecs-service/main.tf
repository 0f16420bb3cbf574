# Demo twin of modules/ecs-service: the task definition is rendered, nothing is run.

terraform {
  required_version = ">= 1.0"
}

locals {
  cluster  = element(split("/", var.cluster_arn), 1)
  revision = substr(sha1(jsonencode([var.image, var.image_tag, var.environment])), 0, 8)
}
