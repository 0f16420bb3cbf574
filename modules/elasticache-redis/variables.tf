variable "name" {
  description = "ID of the replication group (also of its subnet and security groups)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name)) && !can(regex("--", var.name))
    error_message = "The name must be 2 to 40 lower-case letters, digits and single hyphens, starting with a letter."
  }
}

variable "engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"
}

variable "node_type" {
  description = "Node type of every cache node."
  type        = string
  default     = "cache.t4g.micro"

  validation {
    condition     = can(regex("^cache\\.", var.node_type))
    error_message = "The node type must be an ElastiCache type such as cache.t4g.micro."
  }
}

variable "replicas" {
  description = "Read replicas besides the primary (0 to 5); with one or more, failover is automatic and multi-AZ."
  type        = number
  default     = 1

  validation {
    condition     = var.replicas >= 0 && var.replicas <= 5 && floor(var.replicas) == var.replicas
    error_message = "The number of replicas must be a whole number from 0 to 5."
  }
}

variable "vpc_id" {
  description = "ID of the VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cache nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "At least one subnet is needed."
  }
}

variable "allowed_cidr_blocks" {
  description = "CIDR blocks allowed to connect to Redis (usually the VPC's)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.allowed_cidr_blocks : can(cidrhost(cidr, 0))])
    error_message = "Every allowed CIDR block must be a CIDR such as 10.0.0.0/16."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the data at rest; null: the AWS managed key."
  type        = string
  default     = null
}

variable "snapshot_retention_days" {
  description = "Days daily snapshots are kept (0: none)."
  type        = number
  default     = 7

  validation {
    condition     = var.snapshot_retention_days >= 0 && var.snapshot_retention_days <= 35
    error_message = "Snapshots are kept from 0 to 35 days."
  }
}

variable "apply_immediately" {
  description = "Apply changes now instead of in the next maintenance window."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
