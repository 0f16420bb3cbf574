output "zone_id" {
  description = "ID of the account's hosted zone."
  value       = "Z${local.id}"
}

output "name_servers" {
  description = "Name servers of the zone (written into the parent zone as its NS record)."
  value       = [for n in [1, 2, 3, 4] : "ns-${n}.awsdns-${n}.example"]
}

output "domain_name" {
  description = "The subdomain the zone serves."
  value       = var.domain_name
}
