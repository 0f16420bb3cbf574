output "bucket_name" {
  description = "Bucket to upload the site's files to."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = aws_s3_bucket.this.arn
}

output "distribution_id" {
  description = "ID of the CloudFront distribution (for invalidations)."
  value       = aws_cloudfront_distribution.this.id
}

output "distribution_domain_name" {
  description = "CloudFront's own name of the distribution (point a CNAME or alias at it)."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "certificate_arn" {
  description = "ARN of the us-east-1 certificate the distribution serves."
  value       = data.aws_acm_certificate.this.arn
}
