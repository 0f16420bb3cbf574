variable "name_prefix" {
  description = "Prefix of every role name (<name_prefix>-<role>), usually the organisation name."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9+=,.@_-]{1,32}$", var.name_prefix))
    error_message = "The prefix must be 1 to 32 characters allowed in IAM names."
  }
}

variable "trusted_account_id" {
  description = "Account (security) whose users may assume the roles; null: make no roles (the security account's own half)."
  type        = string
  default     = null

  validation {
    condition     = var.trusted_account_id == null || can(regex("^[0-9]{12}$", var.trusted_account_id))
    error_message = "The trusted account ID must be 12 digits."
  }
}

variable "roles" {
  description = "Roles to make in this account: role name (without prefix) -> ARNs of the managed policies attached."
  type        = map(list(string))
  default = {
    "allow-full-access-from-security" = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    "allow-read-only-from-security"   = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
  }

  validation {
    condition     = alltrue([for name in keys(var.roles) : can(regex("^[a-zA-Z0-9+=,.@_-]{1,31}$", name))])
    error_message = "Role names must be 1 to 31 characters allowed in IAM names."
  }
}

variable "require_mfa" {
  description = "Allow assuming the roles only with an MFA-authenticated session."
  type        = bool
  default     = true
}

variable "max_session_seconds" {
  description = "Longest session of an assumed role, in seconds."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_session_seconds >= 3600 && var.max_session_seconds <= 43200
    error_message = "The session length must be between 3600 and 43200 seconds."
  }
}

variable "group_assume_role_arns" {
  description = "The security account's half: IAM group name -> ARNs of the roles its members may assume."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for arns in values(var.group_assume_role_arns) : alltrue([for arn in arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])])
    error_message = "Every value must be a list of IAM role ARNs."
  }
}

variable "tags" {
  description = "Tags added to every role."
  type        = map(string)
  default     = {}
}
