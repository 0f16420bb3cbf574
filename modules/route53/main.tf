# The organisation's public hosted zone. An existing zone is imported into this unit's state by
# `refarch dns import` (terraform import aws_route53_zone.primary_domain ZONE_ID), so the
# address below is part of refarch's contract ([dns] address in refarch.toml changes it).

terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

resource "aws_route53_zone" "primary_domain" {
  name    = var.domain_name
  comment = var.comment
  tags    = var.tags
}
