output "zone_id" {
  description = "ID of the hosted zone."
  value       = aws_route53_zone.primary_domain.zone_id
}

output "name_servers" {
  description = "Name servers to delegate the domain to at its registrar."
  value       = aws_route53_zone.primary_domain.name_servers
}

output "delegation_role_arn" {
  description = "Role the delegation accounts assume to write their subzones' NS records; null without any."
  value       = length(var.delegation_account_ids) > 0 ? aws_iam_role.delegation[0].arn : null
}
