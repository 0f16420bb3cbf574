output "trail_arn" {
  description = "ARN of the trail."
  value       = "arn:aws:cloudtrail:demo:${local.account}:trail/${var.name}"
}

output "s3_bucket_name" {
  description = "Name of the bucket holding the log files."
  value       = var.s3_bucket_name
}

output "s3_bucket_arn" {
  description = "ARN of the bucket holding the log files."
  value       = "arn:aws:s3:::${var.s3_bucket_name}"
}
