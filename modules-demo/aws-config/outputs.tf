output "recorder_name" {
  description = "Name of the configuration recorder."
  value       = var.name
}

output "role_arn" {
  description = "ARN of the role Config records and delivers with."
  value       = "arn:aws:iam::000000000000:role/${var.name}-config"
}

output "rule_arns" {
  description = "ARNs of the Config rules, by identifier."
  value       = local.rules
}

output "bucket_name" {
  description = "Bucket Config delivers to."
  value       = var.s3_bucket_name
}
