# The OpenVPN server: Ubuntu 22.04 with OpenVPN, the AWS CLI and persistent iptables rules, and
# refarch-openvpn-pki, which copies the PKI `refarch bootstrap` keeps in Secrets Manager (no
# easy-rsa, no PKI made on the instance). The secret names are variables here (the defaults
# baked into /etc/refarch-openvpn.env) and inputs of the openvpn module (which overrides them).

variable "vpn_server_secret" {
  type        = string
  default     = "refarch/vpn/server"
  description = "Secrets Manager secret with the server's CA, certificate, key and tls-crypt key."
}

variable "vpn_crl_secret" {
  type        = string
  default     = "refarch/vpn/crl"
  description = "Secrets Manager secret with the CRL (`refarch vpn revoke` updates it)."
}

build {
  source "source.amazon-ebs.base" {
    name            = "openvpn"
    ami_name        = "refarch-openvpn-${local.suffix}"
    ami_description = "refarch OpenVPN server"
    ssh_username    = "ubuntu"
    tags            = merge(local.common_tags, { "Name" = "refarch-openvpn", "refarch:template" = "openvpn" })
    source_ami_filter {
      filters     = { name = coalesce(var.source_ami_name, "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*") }
      owners      = length(var.source_ami_owners) > 0 ? var.source_ami_owners : ["099720109477"]
      most_recent = true
    }
  }

  provisioner "file" {
    except      = local.provision ? [] : ["amazon-ebs.openvpn"]
    source      = "${path.root}/files/refarch-openvpn-pki"
    destination = "refarch-openvpn-pki" # relative: the SSH user's home on the build instance
  }

  provisioner "shell" {
    except = local.provision ? [] : ["amazon-ebs.openvpn"]
    inline = [
      "sudo apt-get update -q",
      "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q openvpn awscli python3 iptables-persistent",
      "sudo systemctl disable openvpn",
      "echo 'net.ipv4.ip_forward = 1' | sudo tee /etc/sysctl.d/90-openvpn.conf",
      "sudo install -m 0755 \"$HOME/refarch-openvpn-pki\" /usr/local/bin/refarch-openvpn-pki && rm -f \"$HOME/refarch-openvpn-pki\"",
      "printf 'REGION=${var.region}\\nSERVER_SECRET=${var.vpn_server_secret}\\nCRL_SECRET=${var.vpn_crl_secret}\\n' | sudo tee /etc/refarch-openvpn.env",
      "printf '[Unit]\\nDescription=Copy the OpenVPN PKI from Secrets Manager (refarch)\\nBefore=openvpn-server@server.service\\n[Service]\\nType=oneshot\\nExecStart=/usr/local/bin/refarch-openvpn-pki\\n[Install]\\nWantedBy=multi-user.target\\n' | sudo tee /etc/systemd/system/refarch-openvpn-pki.service",
      "printf '[Unit]\\nDescription=Refresh the OpenVPN CRL from Secrets Manager (refarch)\\n[Timer]\\nOnBootSec=5min\\nOnUnitActiveSec=5min\\n[Install]\\nWantedBy=timers.target\\n' | sudo tee /etc/systemd/system/refarch-openvpn-pki.timer",
      "sudo systemctl enable refarch-openvpn-pki.service refarch-openvpn-pki.timer",
    ]
  }
}
