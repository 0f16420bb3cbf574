output "zone_id" {
  description = "ID of the hosted zone."
  value       = aws_route53_zone.primary_domain.zone_id
}

output "name_servers" {
  description = "Name servers to delegate the domain to at its registrar."
  value       = aws_route53_zone.primary_domain.name_servers
}
