# What every template shares: the variables and the base amazon-ebs source. Packer loads this
# folder as one configuration; refarch builds one template at a time with
# `packer build -only=amazon-ebs.<template> -var-file=... packer/`.

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "Region to build in; refarch runs one build per region."
}

variable "endpoint" {
  type        = string
  default     = ""
  description = "EC2 endpoint override (custom_endpoint_ec2) for emulators such as moto; empty for AWS."
}

variable "communicator" {
  type        = string
  default     = "ssh"
  description = "\"none\" for emulators: no instance to talk to, so the provisioners are skipped."
}

variable "build_id" {
  type        = string
  default     = ""
  description = "Unique suffix of the AMI name; refarch passes one per build attempt."
}

variable "source_ami_name" {
  type        = string
  default     = ""
  description = "Name filter of the source AMI; empty keeps the template's own default."
}

variable "source_ami_owners" {
  type        = list(string)
  default     = []
  description = "Owners of the source AMI; empty keeps the template's own default."
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "ami_users" {
  type        = list(string)
  default     = []
  description = "Account ids given launch permission on the AMI (the app accounts)."
}

variable "encrypt_boot" {
  type    = bool
  default = false
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "Customer-managed KMS key for encrypt_boot; needed to share an encrypted AMI."
}

variable "tags" {
  type    = map(string)
  default = {}
}

locals {
  suffix = var.build_id != "" ? var.build_id : formatdate("YYYYMMDDhhmmss", timestamp())
  common_tags = merge({
    "ManagedBy"     = "refarch"
    "refarch:build" = local.suffix
  }, var.tags)
  # An emulator has no STS, no instance metadata and may not list every region.
  emulated  = var.endpoint != ""
  provision = var.communicator != "none"
}

# Each template's build block names this source after itself and adds what differs: the
# AMI name, the source image, the SSH user, the tags and the provisioners.
source "amazon-ebs" "base" {
  region                     = var.region
  custom_endpoint_ec2        = var.endpoint
  skip_credential_validation = local.emulated
  skip_metadata_api_check    = local.emulated
  skip_region_validation     = local.emulated

  communicator  = var.communicator
  instance_type = var.instance_type
  ami_users     = var.ami_users
  encrypt_boot  = var.encrypt_boot
  kms_key_id    = var.kms_key_id
  snapshot_tags = local.common_tags
  run_tags      = local.common_tags
}
