output "alb_arn" {
  description = "ARN of the load balancer."
  value       = local.arn
}

output "alb_dns_name" {
  description = "DNS name AWS gave the load balancer."
  value       = local.dns_name
}

output "alb_zone_id" {
  description = "Route 53 zone of the load balancer's DNS name (for alias records)."
  value       = "Z35SXDOTRQ7X7K"
}

output "https_listener_arn" {
  description = "ARN of the HTTPS listener: services add their listener rules to it."
  value       = "arn:aws:elasticloadbalancing:demo:000000000000:listener/app/${var.name}/${local.id}/443"
}

output "security_group_id" {
  description = "Security group of the load balancer: targets allow traffic from it."
  value       = "sg-${substr(local.id, 0, 17)}"
}

output "certificate_arn" {
  description = "ARN of the ACM certificate the HTTPS listener serves."
  value       = "arn:aws:acm:demo:000000000000:certificate/${substr(sha1(var.certificate_domain), 0, 32)}"
}

output "fqdn" {
  description = "Name of the Route 53 record, or the load balancer's own DNS name without a zone."
  value       = var.record_name == null ? local.dns_name : var.record_name
}
