output "trail_arn" {
  description = "ARN of the trail."
  value       = aws_cloudtrail.this.arn
}

output "s3_bucket_name" {
  description = "Name of the bucket holding the log files."
  value       = aws_s3_bucket.logs.id
}

output "s3_bucket_arn" {
  description = "ARN of the bucket holding the log files."
  value       = aws_s3_bucket.logs.arn
}
