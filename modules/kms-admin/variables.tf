variable "name" {
  description = "Name of the customer master key; the alias is alias/<name>."
  type        = string
}

variable "cmk_administrator_iam_arns" {
  description = "IAM ARNs allowed to administer the key (but not to use it). Must not be empty, or nobody could manage the key."
  type        = list(string)

  validation {
    condition     = length(var.cmk_administrator_iam_arns) > 0
    error_message = "At least one CMK administrator is required."
  }
}

variable "cmk_user_iam_arns" {
  description = "IAM ARNs in this account allowed to encrypt and decrypt with the key."
  type        = list(string)
  default     = []
}

variable "cmk_external_user_account_ids" {
  description = "Other account IDs allowed to use the key (their IAM policies must allow it too)."
  type        = list(string)
  default     = []
}

variable "deletion_window_in_days" {
  description = "Waiting period before a deleted key is gone for good (7 to 30)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to the key."
  type        = map(string)
  default     = {}
}
