variable "repository_names" {
  description = "Names of the ECR repositories to create."
  type        = list(string)
}

variable "allowed_read_account_ids" {
  description = "Accounts (the app accounts) allowed to pull images from every repository."
  type        = list(string)
  default     = []
}

variable "image_tag_mutability" {
  description = "MUTABLE or IMMUTABLE; immutable tags make a deployed tag always mean the same image."
  type        = string
  default     = "IMMUTABLE"
}

variable "scan_on_push" {
  description = "Scan every pushed image for known vulnerabilities."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every repository."
  type        = map(string)
  default     = {}
}
