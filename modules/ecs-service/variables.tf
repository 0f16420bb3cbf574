variable "service_name" {
  description = "Name of the ECS service, its task family and log group."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster to run in (the ecs-cluster unit's cluster_arn)."
  type        = string
}

variable "image" {
  description = "Container image without a tag (the ecr-repos unit's repository URL)."
  type        = string
}

variable "image_tag" {
  description = "Tag of the image to deploy."
  type        = string
  default     = "latest"
}

variable "desired_count" {
  description = "How many tasks to keep running."
  type        = number
  default     = 1
}

variable "container_port" {
  description = "Port the container listens on."
  type        = number
  default     = 8080
}

variable "cpu" {
  description = "CPU units reserved for the container (1024 = one vCPU)."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Memory (MiB) reserved for the container."
  type        = number
  default     = 512
}

variable "environment" {
  description = "Environment variables of the container."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the container's logs."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
