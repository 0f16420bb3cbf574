variable "bucket_name" {
  description = "Name of the central log archive bucket (globally unique)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the archive (the security account's kms-admin key)."
  type        = string
}

variable "writer_account_ids" {
  description = "Accounts whose log delivery services (CloudTrail, Config, ELB) may write into the archive."
  type        = list(string)
  default     = []
}

variable "retention_days" {
  description = "Delete archived objects after this many days."
  type        = number
  default     = 2555

  validation {
    condition     = var.retention_days >= 1 && floor(var.retention_days) == var.retention_days
    error_message = "The retention must be a whole number of days, at least 1."
  }
}

variable "force_destroy" {
  description = "Allow destroying the bucket with objects in it (only for test accounts: it deletes the archive)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to the bucket."
  type        = map(string)
  default     = {}
}
