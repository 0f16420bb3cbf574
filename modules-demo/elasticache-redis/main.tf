# Demo twin of modules/elasticache-redis: endpoints derived from the replication group's name.

terraform {
  required_version = ">= 1.0"
}

locals {
  port   = 6379
  suffix = substr(sha1(var.name), 0, 6)
}
