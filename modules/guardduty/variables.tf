variable "name" {
  description = "Prefix of the EventBridge rule name."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{1,40}$", var.name))
    error_message = "The name must be 1 to 40 letters, digits, dots, hyphens or underscores."
  }
}

variable "finding_publishing_frequency" {
  description = "How often updated findings are published: FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS."
  type        = string
  default     = "FIFTEEN_MINUTES"

  validation {
    condition     = contains(["FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS"], var.finding_publishing_frequency)
    error_message = "The frequency must be FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS."
  }
}

variable "notify_findings" {
  description = "Send findings to alert_topic_arn."
  type        = bool
  default     = false
}

variable "alert_topic_arn" {
  description = "SNS topic findings go to (the alarms unit's alert topic), with notify_findings."
  type        = string
  default     = null
}

variable "min_severity" {
  description = "Lowest severity sent to the topic (GuardDuty: 1 to 8.9; 4 is medium, 7 high)."
  type        = number
  default     = 4

  validation {
    condition     = var.min_severity >= 0 && var.min_severity <= 10
    error_message = "The severity must be between 0 and 10."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
