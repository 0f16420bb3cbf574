variable "name" {
  description = "Name of the recorder and delivery channel (its role is <name>-config)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,57}$", var.name))
    error_message = "The name must be 1 to 57 letters, digits, hyphens or underscores."
  }
}

variable "s3_bucket_name" {
  description = "Bucket Config delivers to (the log archive bucket, in the logs account; with create_bucket, made here)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_bucket_name))
    error_message = "The bucket name must be 3 to 63 lower-case letters, digits, dots and hyphens."
  }
}

variable "s3_key_prefix" {
  description = "Key prefix of the deliveries in the bucket."
  type        = string
  default     = "config"

  validation {
    condition     = can(regex("^[a-zA-Z0-9!_.*'()-]+(/[a-zA-Z0-9!_.*'()-]+)*$", var.s3_key_prefix))
    error_message = "The key prefix must be path segments without a leading or trailing slash."
  }
}

variable "sns_topic_arn" {
  description = "Topic told about configuration changes (the alert topic); null: none."
  type        = string
  default     = null
}

variable "include_global_resource_types" {
  description = "Record global resources (IAM): true in one region of the account only."
  type        = bool
  default     = true
}

variable "snapshot_frequency" {
  description = "How often a configuration snapshot is delivered."
  type        = string
  default     = "TwentyFour_Hours"

  validation {
    condition     = contains(["One_Hour", "Three_Hours", "Six_Hours", "Twelve_Hours", "TwentyFour_Hours"], var.snapshot_frequency)
    error_message = "The frequency must be One_Hour, Three_Hours, Six_Hours, Twelve_Hours or TwentyFour_Hours."
  }
}

variable "managed_rules" {
  description = "Identifiers of AWS managed Config rules to evaluate."
  type        = list(string)
  default = [
    "CLOUD_TRAIL_ENABLED",
    "ENCRYPTED_VOLUMES",
    "IAM_USER_MFA_ENABLED",
    "ROOT_ACCOUNT_MFA_ENABLED",
    "S3_BUCKET_PUBLIC_READ_PROHIBITED",
  ]

  validation {
    condition     = alltrue([for r in var.managed_rules : can(regex("^[A-Z0-9_]+$", r))])
    error_message = "Managed rule identifiers are upper-case, such as CLOUD_TRAIL_ENABLED."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "create_bucket" {
  description = "Make s3_bucket_name in this account (for an account that deploys before the logs account)."
  type        = bool
  default     = false
}

variable "force_destroy" {
  description = "With create_bucket: let a destroy delete the bucket with its deliveries."
  type        = bool
  default     = false
}
