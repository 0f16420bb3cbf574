variable "vpc_name" {
  description = "Name of the VPC, used as a prefix for every resource in it."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR block of the VPC, for example 10.0.0.0/16. Must not overlap with peered VPCs."
  type        = string
}

variable "num_availability_zones" {
  description = "How many availability zones get a public and a private subnet."
  type        = number
  default     = 2
}

variable "num_nat_gateways" {
  description = "How many NAT gateways to run (1 is cheaper, one per AZ survives an AZ outage)."
  type        = number
  default     = 1
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
