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
