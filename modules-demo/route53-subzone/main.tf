# Demo twin of modules/route53-subzone: the zone's ID and name servers are derived from the
# domain, and the delegation is what the parent zone would hold.

terraform {
  required_version = ">= 1.0"
}

locals {
  id = upper(substr(sha1(var.domain_name), 0, 20))
}
