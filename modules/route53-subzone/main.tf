# An account's own public hosted zone for a subdomain of the organisation's domain
# (<account>.<domain>), and the NS record that delegates it, written into the parent zone in
# shared-services through the `aws.parent` provider (the role the route53 unit made for it).
# Units of this account (the load balancers) then write their records into a zone of their
# own account.

terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source                = "hashicorp/aws"
      version               = ">= 5.0, < 6.0"
      configuration_aliases = [aws.parent]
    }
  }
}

resource "aws_route53_zone" "this" {
  name    = var.domain_name
  comment = var.comment
  tags    = var.tags
}

resource "aws_route53_record" "delegation" {
  provider = aws.parent
  zone_id  = var.parent_zone_id
  name     = var.domain_name
  type     = "NS"
  ttl      = var.ttl
  records  = aws_route53_zone.this.name_servers
}
