output "vpc_id" {
  description = "ID of the VPC."
  value       = "vpc-${local.id}"
}

output "vpc_name" {
  description = "Name of the VPC."
  value       = var.vpc_name
}

output "vpc_cidr_block" {
  description = "CIDR block of the VPC."
  value       = var.cidr_block
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, one per availability zone."
  value       = [for i in local.zones : "subnet-${substr(sha1("${local.id}/public/${i}"), 0, 17)}"]
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, one per availability zone."
  value       = [for i in local.zones : "subnet-${substr(sha1("${local.id}/private/${i}"), 0, 17)}"]
}

output "nat_gateway_public_ips" {
  description = "Public IPs of the NAT gateways (allow-list them at third parties)."
  value       = [for i in range(min(var.num_nat_gateways, var.num_availability_zones)) : cidrhost("198.51.100.0/24", i + 1)]
}
