variable "name_prefix" {
  description = "Prefix of every group name, usually the organisation name."
  type        = string
}

variable "groups" {
  description = "Groups to create: group name (without prefix) -> ARNs of the managed policies attached to it."
  type        = map(list(string))
  default = {
    "full-access" = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    "read-only"   = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    "billing"     = ["arn:aws:iam::aws:policy/job-function/Billing"]
  }
}

variable "users" {
  description = "IAM users to create: user name -> names of the groups (without prefix) they belong to."
  type        = map(list(string))
  default     = {}
}

variable "require_mfa" {
  description = "Attach a policy to every group that denies everything except MFA set-up until the user signs in with MFA."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Destroy users even when they have access keys, passwords or MFA devices made outside Terraform (they are deleted too)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every user (IAM groups take no tags)."
  type        = map(string)
  default     = {}
}
