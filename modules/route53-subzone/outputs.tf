output "zone_id" {
  description = "ID of the account's hosted zone."
  value       = aws_route53_zone.this.zone_id
}

output "name_servers" {
  description = "Name servers of the zone (written into the parent zone as its NS record)."
  value       = aws_route53_zone.this.name_servers
}

output "domain_name" {
  description = "The subdomain the zone serves."
  value       = aws_route53_zone.this.name
}
