variable "cluster_name" {
  description = "Name of the ECS cluster and of its Auto Scaling group."
  type        = string
}

variable "vpc_id" {
  description = "VPC the container instances run in."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets (usually the private ones) for the container instances."
  type        = list(string)
}

variable "ami_id" {
  description = "ECS-optimised AMI for the container instances (built by `refarch amis build`)."
  type        = string
}

variable "keypair_name" {
  description = "EC2 key pair for emergency SSH access (created by `refarch bootstrap`)."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type of the container instances."
  type        = string
  default     = "t3.small"
}

variable "min_size" {
  description = "Minimum number of container instances."
  type        = number
  default     = 1
}

variable "max_size" {
  description = "Maximum number of container instances."
  type        = number
  default     = 3
}

variable "allow_ssh_from_security_group_ids" {
  description = "Security groups (the OpenVPN server's) allowed to SSH to the instances."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource and propagated to the instances."
  type        = map(string)
  default     = {}
}
