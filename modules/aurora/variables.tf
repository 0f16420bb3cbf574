variable "name" {
  description = "Identifier of the cluster (its instances are <name>-0, <name>-1 ...)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,50}[a-z0-9]$", var.name)) && !can(regex("--", var.name))
    error_message = "The name must be lower-case letters, digits and single hyphens, start with a letter, at most 52 characters."
  }
}

variable "engine" {
  description = "aurora-postgresql or aurora-mysql."
  type        = string
  default     = "aurora-postgresql"

  validation {
    condition     = contains(["aurora-postgresql", "aurora-mysql"], var.engine)
    error_message = "The engine must be aurora-postgresql or aurora-mysql."
  }
}

variable "engine_version" {
  description = "Engine version; null: the engine's default."
  type        = string
  default     = null
}

variable "database_name" {
  description = "Name of the database created in the cluster."
  type        = string
  default     = "app"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,62}$", var.database_name))
    error_message = "The database name must start with a letter and hold only letters, digits and underscores (at most 63)."
  }
}

variable "master_username" {
  description = "Name of the master user."
  type        = string
  default     = "app_admin"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,15}$", var.master_username))
    error_message = "The master user name must start with a letter and hold only letters, digits and underscores (at most 16)."
  }
}

variable "master_password" {
  description = "Password of the master user: refarch passes it as TF_VAR_master_password from Secrets Manager."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.master_password) >= 8 && length(var.master_password) <= 128 && !can(regex("[/@\" ]", var.master_password))
    error_message = "The master password must be 8 to 128 characters without /, @, \" or spaces."
  }
}

variable "instance_class" {
  description = "Instance class of every cluster instance."
  type        = string
  default     = "db.r6g.large"

  validation {
    condition     = can(regex("^db\\.", var.instance_class))
    error_message = "The instance class must be an RDS class such as db.r6g.large."
  }
}

variable "instance_count" {
  description = "Number of instances (the first is the writer, the others readers)."
  type        = number
  default     = 1

  validation {
    condition     = var.instance_count >= 1 && var.instance_count <= 16 && floor(var.instance_count) == var.instance_count
    error_message = "The instance count must be a whole number from 1 to 16."
  }
}

variable "vpc_id" {
  description = "ID of the VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cluster, in at least two availability zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "An Aurora cluster needs subnets in at least two availability zones."
  }
}

variable "allowed_cidr_blocks" {
  description = "CIDR blocks allowed to connect to the database port (usually the VPC's)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.allowed_cidr_blocks : can(cidrhost(cidr, 0))])
    error_message = "Every allowed CIDR block must be a CIDR such as 10.0.0.0/16."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the storage; null: the AWS managed key."
  type        = string
  default     = null
}

variable "backup_retention_days" {
  description = "Days automated backups are kept."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "Backups are kept from 1 to 35 days."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the cluster (turn off before a destroy)."
  type        = bool
  default     = false
}

variable "skip_final_snapshot" {
  description = "Delete the cluster without a final snapshot (for throw-away environments)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
