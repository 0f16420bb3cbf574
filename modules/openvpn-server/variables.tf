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

variable "pki_server_secret_name" {
  description = "Secrets Manager secret with the server's CA, certificate, key and tls-crypt key (made by `refarch bootstrap`)."
  type        = string
  default     = "refarch/vpn/server"
}

variable "pki_crl_secret_name" {
  description = "Secrets Manager secret with the CRL (`refarch vpn revoke` updates it; the server re-reads it every 5 minutes)."
  type        = string
  default     = "refarch/vpn/crl"
}

variable "pki_kms_key_arn" {
  description = "Customer-managed KMS key of the PKI secrets (alias/refarch-vpn); empty allows any key through Secrets Manager."
  type        = string
  default     = ""
}

variable "client_cidr" {
  description = "Addresses handed to VPN clients."
  type        = string
  default     = "10.8.0.0/24"
}

variable "routed_cidrs" {
  description = "Networks pushed to clients as routes through the VPN (e.g. every VPC's CIDR)."
  type        = list(string)
  default     = []
}
