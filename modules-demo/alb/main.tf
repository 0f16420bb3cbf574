# Demo twin of modules/alb: the load balancer's ARN and names are derived from its name.

terraform {
  required_version = ">= 1.0"
}

locals {
  id       = substr(sha1(var.name), 0, 16)
  arn      = "arn:aws:elasticloadbalancing:demo:000000000000:loadbalancer/app/${var.name}/${local.id}"
  dns_name = "${var.internal ? "internal-" : ""}${var.name}-${substr(local.id, 0, 10)}.demo.elb.amazonaws.com"
}
