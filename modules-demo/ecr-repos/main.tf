# Demo twin of modules/ecr-repos: repository URLs in the reader accounts' first registry.

terraform {
  required_version = ">= 1.0"
}

locals {
  registry = "000000000000.dkr.ecr.demo.amazonaws.com"
}
