output "alb_arn" {
  description = "ARN of the load balancer."
  value       = aws_lb.this.arn
}

output "alb_dns_name" {
  description = "DNS name AWS gave the load balancer."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 zone of the load balancer's DNS name (for alias records)."
  value       = aws_lb.this.zone_id
}

output "https_listener_arn" {
  description = "ARN of the HTTPS listener: services add their listener rules to it."
  value       = aws_lb_listener.https.arn
}

output "security_group_id" {
  description = "Security group of the load balancer: targets allow traffic from it."
  value       = aws_security_group.this.id
}

output "certificate_arn" {
  description = "ARN of the ACM certificate the HTTPS listener serves."
  value       = data.aws_acm_certificate.this.arn
}

output "fqdn" {
  description = "Name of the Route 53 record, or the load balancer's own DNS name without a zone."
  value       = var.record_name == null ? aws_lb.this.dns_name : aws_route53_record.this[0].fqdn
}
