# Demo twin of modules/openvpn-server: the server's IDs are derived from its name and subnet.

terraform {
  required_version = ">= 1.0"
}

locals {
  id = substr(sha1("${var.name}/${var.subnet_id}/${var.ami_id}"), 0, 17)
}
