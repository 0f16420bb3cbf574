# The OpenVPN server: Ubuntu 22.04 with OpenVPN, easy-rsa and persistent iptables rules.

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

  provisioner "shell" {
    except = local.provision ? [] : ["amazon-ebs.openvpn"]
    inline = [
      "sudo apt-get update -q",
      "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q openvpn easy-rsa iptables-persistent",
      "sudo systemctl disable openvpn",
      "echo 'net.ipv4.ip_forward = 1' | sudo tee /etc/sysctl.d/90-openvpn.conf",
    ]
  }
}
