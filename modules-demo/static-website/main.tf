# Demo twin of modules/static-website: the distribution's ID is derived from the site's name.

terraform {
  required_version = ">= 1.0"
}

locals {
  id = upper(substr(sha1(var.domain_name), 0, 14))
}
