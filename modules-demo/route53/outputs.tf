output "zone_id" {
  description = "ID of the hosted zone."
  value       = "Z${local.id}"
}

output "name_servers" {
  description = "Name servers to delegate the domain to at its registrar."
  value       = [for n in [1, 2, 3, 4] : "ns-${n}.awsdns-${n}.example"]
}
