# Demo twin of modules/route53: the zone's ID and name servers are derived from the domain.

terraform {
  required_version = ">= 1.0"
}

locals {
  id = upper(substr(sha1(var.domain_name), 0, 20))
}
