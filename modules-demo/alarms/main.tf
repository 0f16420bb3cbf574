# Demo twin of modules/alarms: the topic's and alarms' ARNs are derived from the name.

terraform {
  required_version = ">= 1.0"
}

locals {
  topic = "${var.name}-alerts"
}
