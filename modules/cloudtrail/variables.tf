variable "name" {
  description = "Name of the trail."
  type        = string
}

variable "s3_bucket_name" {
  description = "Name of the S3 bucket created here to receive the trail's log files (globally unique)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the log files (the kms-admin unit's key_arn)."
  type        = string
}

variable "is_multi_region_trail" {
  description = "Record API calls in every region, not only this one."
  type        = bool
  default     = true
}

variable "num_days_after_which_archive_log_data" {
  description = "Move log files to Glacier after this many days."
  type        = number
  default     = 30

  validation {
    condition     = var.num_days_after_which_archive_log_data >= 1 && floor(var.num_days_after_which_archive_log_data) == var.num_days_after_which_archive_log_data
    error_message = "The number of days before archiving must be a whole number of at least 1."
  }
}

variable "num_days_after_which_delete_log_data" {
  description = "Delete log files after this many days (0 keeps them forever)."
  type        = number
  default     = 365

  validation {
    condition     = var.num_days_after_which_delete_log_data >= 0 && floor(var.num_days_after_which_delete_log_data) == var.num_days_after_which_delete_log_data
    error_message = "The number of days before deleting must be a whole number, 0 to keep log files forever."
  }
}

variable "force_destroy" {
  description = "Allow destroying the bucket with log files in it (only for test accounts)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to the trail and the bucket."
  type        = map(string)
  default     = {}
}
