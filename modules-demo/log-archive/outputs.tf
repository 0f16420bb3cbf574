output "bucket_name" {
  description = "Name of the archive bucket."
  value       = var.bucket_name
}

output "bucket_arn" {
  description = "ARN of the archive bucket."
  value       = local.bucket_arn
}
