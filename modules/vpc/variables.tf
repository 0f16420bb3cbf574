variable "vpc_name" {
  description = "Name of the VPC, used as a prefix for every resource in it."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR block of the VPC, for example 10.0.0.0/16. Must not overlap with peered VPCs."
  type        = string
}

variable "num_availability_zones" {
  description = "How many availability zones get a public and a private subnet (at most 8, and at most the region's zones)."
  type        = number
  default     = 2

  validation {
    condition     = var.num_availability_zones >= 1 && var.num_availability_zones <= 8 && floor(var.num_availability_zones) == var.num_availability_zones
    error_message = "The number of availability zones must be a whole number from 1 to 8 (each zone takes two /20 blocks of the VPC)."
  }
}

variable "num_nat_gateways" {
  description = "How many NAT gateways to run: 1 is cheaper, one per AZ survives an AZ outage, 0 leaves the private subnets without internet access; more than the zones counts as one per zone."
  type        = number
  default     = 1

  validation {
    condition     = var.num_nat_gateways >= 0 && floor(var.num_nat_gateways) == var.num_nat_gateways
    error_message = "The number of NAT gateways must be a whole number, 0 or more."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
