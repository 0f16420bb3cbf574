variable "name" {
  description = "Name of the flow log (its log group is /vpc-flow-logs/<name>)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9_-]{0,50}$", var.name))
    error_message = "The name must be 1 to 51 letters, digits, hyphens or underscores."
  }
}

variable "vpc_id" {
  description = "ID of the VPC whose traffic is logged."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "The VPC ID must look like vpc-0123456789abcdef0."
  }
}

variable "traffic_type" {
  description = "ACCEPT, REJECT or ALL."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.traffic_type)
    error_message = "The traffic type must be ACCEPT, REJECT or ALL."
  }
}

variable "max_aggregation_interval" {
  description = "Seconds over which a flow is aggregated into one record: 60 or 600."
  type        = number
  default     = 600

  validation {
    condition     = contains([60, 600], var.max_aggregation_interval)
    error_message = "The aggregation interval must be 60 or 600 seconds."
  }
}

variable "retention_days" {
  description = "Days the flow logs are kept."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.retention_days)
    error_message = "The retention must be one CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the log group; null: CloudWatch Logs' own encryption."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
