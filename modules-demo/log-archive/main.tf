# Demo twin of modules/log-archive: the bucket is named, not created.

terraform {
  required_version = ">= 1.0"
}

locals {
  bucket_arn = "arn:aws:s3:::${var.bucket_name}"
}
