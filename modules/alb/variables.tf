variable "name" {
  description = "Name of the load balancer (also of its security group)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9-]{0,30}[a-zA-Z0-9]$", var.name))
    error_message = "The name must be 2 to 32 letters, digits and hyphens, not starting or ending with a hyphen."
  }
}

variable "internal" {
  description = "true: an internal load balancer in private subnets; false: internet-facing."
  type        = bool
  default     = false
}

variable "vpc_id" {
  description = "ID of the VPC."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR block of the VPC: where the load balancer may send traffic to."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr_block, 0))
    error_message = "The VPC CIDR block must be a CIDR such as 10.0.0.0/16."
  }
}

variable "subnet_ids" {
  description = "Subnets of the load balancer (public ones for an internet-facing one), in at least two availability zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "An application load balancer needs subnets in at least two availability zones."
  }
}

variable "certificate_domain" {
  description = "Domain name of the ACM certificate of the HTTPS listener (a name in bootstrap.hcl's certificates)."
  type        = string

  validation {
    condition     = can(regex("^(\\*\\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,63}$", var.certificate_domain))
    error_message = "The certificate domain must be a lower-case DNS name, optionally starting with *."
  }
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "allowed_cidr_blocks" {
  description = "CIDR blocks allowed to reach the listeners (80 and 443)."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for cidr in var.allowed_cidr_blocks : can(cidrhost(cidr, 0))])
    error_message = "Every allowed CIDR block must be a CIDR such as 10.0.0.0/8."
  }
}

variable "idle_timeout" {
  description = "Seconds a connection may be idle."
  type        = number
  default     = 60

  validation {
    condition     = var.idle_timeout >= 1 && var.idle_timeout <= 4000
    error_message = "The idle timeout must be between 1 and 4000 seconds."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the load balancer (turn off before a destroy)."
  type        = bool
  default     = false
}

variable "zone_id" {
  description = "Route 53 zone of the load balancer's record (needed with record_name)."
  type        = string
  default     = null
}

variable "record_name" {
  description = "Name of an alias record to make in zone_id; null: no record."
  type        = string
  default     = null

  validation {
    condition     = var.record_name == null || can(regex("^([a-z0-9*]([a-z0-9-]*[a-z0-9])?\\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$", var.record_name))
    error_message = "The record name must be a lower-case DNS name."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
