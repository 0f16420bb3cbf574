output "recorder_name" {
  description = "Name of the configuration recorder."
  value       = aws_config_configuration_recorder.this.name
}

output "role_arn" {
  description = "ARN of the role Config records and delivers with."
  value       = aws_iam_role.this.arn
}

output "rule_arns" {
  description = "ARNs of the Config rules, by identifier."
  value       = { for k, r in aws_config_config_rule.this : k => r.arn }
}

output "bucket_name" {
  description = "Bucket Config delivers to."
  value       = var.create_bucket ? aws_s3_bucket.own[0].id : var.s3_bucket_name
}
