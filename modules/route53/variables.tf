variable "domain_name" {
  description = "The public domain (e.g. acme.com) whose hosted zone this unit manages."
  type        = string
}

variable "comment" {
  description = "Comment of the hosted zone."
  type        = string
  default     = "Managed by refarch"
}

variable "tags" {
  description = "Tags of the hosted zone."
  type        = map(string)
  default     = {}
}

variable "delegation_account_ids" {
  description = "Accounts whose route53-subzone units delegate a subzone of this zone (they may assume delegation_role_name)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.delegation_account_ids : can(regex("^[0-9]{12}$", id))])
    error_message = "Each delegation account ID must be 12 digits."
  }
}

variable "delegation_role_name" {
  description = "Name of the role that may write NS records into this zone (made only with delegation_account_ids)."
  type        = string
  default     = "route53-subzone-delegation"
}
