output "bucket_name" {
  description = "Bucket to upload the site's files to."
  value       = var.bucket_name
}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = "arn:aws:s3:::${var.bucket_name}"
}

output "distribution_id" {
  description = "ID of the CloudFront distribution (for invalidations)."
  value       = "E${local.id}"
}

output "distribution_domain_name" {
  description = "CloudFront's own name of the distribution (point a CNAME or alias at it)."
  value       = "d${lower(local.id)}.cloudfront.net"
}

output "certificate_arn" {
  description = "ARN of the us-east-1 certificate the distribution serves."
  value       = "arn:aws:acm:us-east-1:000000000000:certificate/${substr(sha1(var.certificate_domain), 0, 32)}"
}
