variable "name" {
  description = "Prefix of the topic (<name>-alerts) and of every alarm name."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,200}$", var.name))
    error_message = "The name must be 1 to 200 letters, digits, hyphens or underscores."
  }
}

variable "alert_emails" {
  description = "E-mail addresses subscribed to the alert topic (each must confirm once)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "Every alert e-mail must be an address such as ops@example.com."
  }
}

variable "alarms" {
  description = "Alarms by short name: the metric (namespace, metric_name, dimensions), statistic, comparison, threshold, period and evaluation periods."
  type = map(object({
    description         = string
    namespace           = string
    metric_name         = string
    dimensions          = map(string)
    statistic           = string
    comparison_operator = string
    threshold           = number
    period              = number
    evaluation_periods  = number
  }))
  default = {}

  validation {
    condition = alltrue([for a in values(var.alarms) : contains(
      ["SampleCount", "Average", "Sum", "Minimum", "Maximum"], a.statistic
    )])
    error_message = "Each alarm's statistic must be SampleCount, Average, Sum, Minimum or Maximum."
  }

  validation {
    condition = alltrue([for a in values(var.alarms) : contains(
      ["GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"],
      a.comparison_operator
    )])
    error_message = "Each alarm's comparison_operator must be GreaterThan[OrEqualTo]Threshold or LessThan[OrEqualTo]Threshold."
  }

  validation {
    condition     = alltrue([for a in values(var.alarms) : a.period >= 10 && a.evaluation_periods >= 1])
    error_message = "Each alarm's period must be at least 10 seconds and evaluation_periods at least 1."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the topic; null: not encrypted."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
