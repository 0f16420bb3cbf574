# An OpenVPN server with a fixed public IP, its security group and an instance profile.
# Its PKI comes from Secrets Manager (made by `refarch bootstrap`, see refarch/provision/vpn_pki.py):
# the AMI's refarch-openvpn-pki copies it at boot and refreshes the CRL every 5 minutes.

terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

resource "aws_security_group" "this" {
  name        = var.name
  description = "OpenVPN server ${var.name}"
  vpc_id      = var.vpc_id
  tags        = var.tags

  ingress {
    description = "OpenVPN"
    from_port   = var.vpn_port
    to_port     = var.vpn_port
    protocol    = "udp"
    cidr_blocks = var.allow_vpn_from_cidr_list
  }

  dynamic "ingress" {
    for_each = length(var.allow_ssh_from_cidr_list) > 0 ? [1] : []
    content {
      description = "SSH"
      from_port   = 22
      to_port     = 22
      protocol    = "tcp"
      cidr_blocks = var.allow_ssh_from_cidr_list
    }
  }

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  secret_arn_prefix = "arn:${data.aws_partition.current.partition}:secretsmanager:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:secret"
  server_conf = join("\n", concat([
    "port ${var.vpn_port}",
    "proto udp",
    "dev tun",
    "ca ca.crt",
    "cert server.crt",
    "key server.key",
    "dh none",
    "tls-crypt tls-crypt.key",
    "crl-verify crl.pem",
    "server ${cidrhost(var.client_cidr, 0)} ${cidrnetmask(var.client_cidr)}",
    "keepalive 10 120",
    "data-ciphers AES-256-GCM:AES-128-GCM",
    "auth SHA256",
    "user nobody",
    "group nogroup",
    "persist-key",
    "persist-tun",
    "verb 3",
  ], [for cidr in var.routed_cidrs : "push \"route ${cidrhost(cidr, 0)} ${cidrnetmask(cidr)}\""]))
  user_data = <<-EOT
    #!/bin/bash
    set -euo pipefail
    printf 'REGION=%s\nSERVER_SECRET=%s\nCRL_SECRET=%s\n' '${data.aws_region.current.name}' '${var.pki_server_secret_name}' '${var.pki_crl_secret_name}' > /etc/refarch-openvpn.env
    cat > /etc/openvpn/server/server.conf <<'CONF'
    ${local.server_conf}
    CONF
    /usr/local/bin/refarch-openvpn-pki
    iptables -t nat -A POSTROUTING -s ${var.client_cidr} -o "$(ip route show default | awk '{print $5; exit}')" -j MASQUERADE
    netfilter-persistent save
    systemctl enable --now refarch-openvpn-pki.timer openvpn-server@server
  EOT
}

data "aws_iam_policy_document" "pki" {
  statement {
    sid     = "ReadThePki"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      "${local.secret_arn_prefix}:${var.pki_server_secret_name}-*",
      "${local.secret_arn_prefix}:${var.pki_crl_secret_name}-*",
    ]
  }
  statement {
    sid       = "DecryptThePki"
    actions   = ["kms:Decrypt"]
    resources = [var.pki_kms_key_arn != "" ? var.pki_kms_key_arn : "*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "pki" {
  name   = "${var.name}-pki"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.pki.json
}

resource "aws_iam_instance_profile" "this" {
  name = var.name
  role = aws_iam_role.this.name
  tags = var.tags
}

resource "aws_instance" "this" {
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  key_name               = var.keypair_name
  vpc_security_group_ids = [aws_security_group.this.id]
  iam_instance_profile   = aws_iam_instance_profile.this.name
  source_dest_check      = false
  user_data              = local.user_data
  tags                   = merge(var.tags, { Name = var.name })

  root_block_device {
    encrypted = true
    tags      = merge(var.tags, { Name = var.name })
  }

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }
}

resource "aws_eip" "this" {
  domain   = "vpc"
  instance = aws_instance.this.id
  tags     = merge(var.tags, { Name = var.name })
}
