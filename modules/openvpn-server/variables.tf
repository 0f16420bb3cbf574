variable "name" {
  description = "Name of the OpenVPN server and its security group."
  type        = string
}

variable "vpc_id" {
  description = "VPC to run the server in (the shared-services VPC)."
  type        = string
}

variable "subnet_id" {
  description = "Public subnet for the server."
  type        = string
}

variable "ami_id" {
  description = "AMI with OpenVPN installed (built by `refarch amis build`)."
  type        = string
}

variable "keypair_name" {
  description = "EC2 key pair for emergency SSH access (created by `refarch bootstrap`)."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type of the server."
  type        = string
  default     = "t3.micro"
}

variable "allow_vpn_from_cidr_list" {
  description = "CIDR blocks allowed to connect to the VPN port."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "allow_ssh_from_cidr_list" {
  description = "CIDR blocks allowed to SSH to the server (empty disables SSH)."
  type        = list(string)
  default     = []
}

variable "vpn_port" {
  description = "UDP port OpenVPN listens on."
  type        = number
  default     = 1194
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
