variable "function_name" {
  description = "Name of the function (also of its role and log group)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,57}$", var.function_name))
    error_message = "The function name must be 1 to 57 letters, digits, hyphens or underscores."
  }
}

variable "description" {
  description = "What the function does."
  type        = string
  default     = ""
}

variable "runtime" {
  description = "Lambda runtime, e.g. python3.12 or nodejs20.x."
  type        = string
  default     = "python3.12"

  validation {
    condition     = can(regex("^(python3\\.[0-9]+|nodejs[0-9]+\\.x|java[0-9]+|dotnet[0-9]+|ruby3\\.[0-9]+|provided\\.al2(023)?)$", var.runtime))
    error_message = "The runtime must be a Lambda runtime name such as python3.12, nodejs20.x or provided.al2023."
  }
}

variable "handler" {
  description = "Entry point of the function in its package, e.g. main.handler."
  type        = string
  default     = "main.handler"
}

variable "package_bucket" {
  description = "Bucket of the deployment package (the account's artifact bucket)."
  type        = string
}

variable "package_key" {
  description = "Key of the deployment package: named by its content hash, so a new build is a new key."
  type        = string

  validation {
    condition     = can(regex("\\.zip$", var.package_key))
    error_message = "The package key must name a .zip file."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB."
  type        = number
  default     = 128

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "Memory must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Seconds a run may take."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "The timeout must be between 1 and 900 seconds."
  }
}

variable "architecture" {
  description = "x86_64 or arm64."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "environment" {
  description = "Environment variables of the function."
  type        = map(string)
  default     = {}
}

variable "schedule_expression" {
  description = "EventBridge schedule, e.g. rate(1 hour) or cron(0 3 * * ? *); null: not scheduled."
  type        = string
  default     = null

  validation {
    condition     = var.schedule_expression == null || can(regex("^(rate|cron)\\(.+\\)$", var.schedule_expression))
    error_message = "The schedule must be rate(...) or cron(...)."
  }
}

variable "log_retention_days" {
  description = "Days the function's logs are kept."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log retention must be one CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
