variable "domain_name" {
  description = "The subdomain (e.g. dev.acme.com) whose hosted zone this account keeps."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]*[a-z0-9])?$", var.domain_name))
    error_message = "The domain name must be a lower-case DNS name with at least two labels."
  }
}

variable "parent_zone_id" {
  description = "ID of the parent zone (the route53 unit's, in shared-services) that delegates the subdomain."
  type        = string

  validation {
    condition     = can(regex("^[A-Z0-9]{1,32}$", var.parent_zone_id))
    error_message = "The parent zone ID must be a Route 53 hosted zone ID (upper-case letters and digits, without /hostedzone/)."
  }
}

variable "parent_role_arn" {
  description = "Role in the parent zone's account that the generated aws.parent provider assumes (the route53 unit's delegation_role_arn)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.parent_role_arn))
    error_message = "The parent role must be an IAM role ARN."
  }
}

variable "ttl" {
  description = "TTL of the NS delegation record, in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.ttl >= 60
    error_message = "The TTL must be at least 60 seconds."
  }
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
