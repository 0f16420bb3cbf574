# The logs account's central archive: a versioned, KMS-encrypted bucket other accounts deliver to.

terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

resource "aws_s3_bucket" "archive" {
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_versioning" "archive" {
  bucket = aws_s3_bucket.archive.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    id     = "retention"
    status = "Enabled"
    filter {}
    expiration {
      days = var.retention_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.archive]
}

locals {
  delivery_services = ["cloudtrail.amazonaws.com", "config.amazonaws.com", "delivery.logs.amazonaws.com"]
}

resource "aws_s3_bucket_public_access_block" "archive" {
  bucket                  = aws_s3_bucket.archive.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

data "aws_iam_policy_document" "archive" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.archive.arn, "${aws_s3_bucket.archive.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # What CloudTrail and Config need to deliver (as AWS documents it): read the bucket's ACL
  # (and, for Config, that it exists), then write with the bucket owner in full control.
  dynamic "statement" {
    for_each = length(var.writer_account_ids) > 0 ? [1] : []
    content {
      sid       = "LogDeliveryAclCheck"
      actions   = ["s3:GetBucketAcl", "s3:ListBucket"]
      resources = [aws_s3_bucket.archive.arn]
      principals {
        type        = "Service"
        identifiers = local.delivery_services
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = var.writer_account_ids
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.writer_account_ids) > 0 ? [1] : []
    content {
      sid     = "LogDeliveryWrite"
      actions = ["s3:PutObject"]
      resources = [
        for id in var.writer_account_ids : "${aws_s3_bucket.archive.arn}/AWSLogs/${id}/*"
      ]
      principals {
        type        = "Service"
        identifiers = local.delivery_services
      }
      condition {
        test     = "StringEquals"
        variable = "s3:x-amz-acl"
        values   = ["bucket-owner-full-control"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = var.writer_account_ids
      }
    }
  }
}

resource "aws_s3_bucket_policy" "archive" {
  bucket     = aws_s3_bucket.archive.id
  policy     = data.aws_iam_policy_document.archive.json
  depends_on = [aws_s3_bucket_public_access_block.archive]
}
