# Demo twin of modules/guardduty: the detector's ID is derived from the name.

terraform {
  required_version = ">= 1.0"
}

locals {
  detector_id = substr(sha1(var.name), 0, 32)
}
