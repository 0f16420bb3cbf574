output "zone_id" {
  description = "ID of the hosted zone."
  value       = "Z${local.id}"
}

output "name_servers" {
  description = "Name servers to delegate the domain to at its registrar."
  value       = [for n in [1, 2, 3, 4] : "ns-${n}.awsdns-${n}.example"]
}

output "delegation_role_arn" {
  description = "Role the delegation accounts assume to write their subzones' NS records; null without any."
  value       = length(var.delegation_account_ids) > 0 ? "arn:aws:iam::000000000000:role/${var.delegation_role_name}" : null
}
