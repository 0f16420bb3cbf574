# The bastion host: Amazon Linux 2023 with the SSM agent, key-only SSH and security updates.

build {
  source "source.amazon-ebs.base" {
    name            = "bastion"
    ami_name        = "refarch-bastion-${local.suffix}"
    ami_description = "refarch bastion host"
    ssh_username    = "ec2-user"
    tags            = merge(local.common_tags, { "Name" = "refarch-bastion", "refarch:template" = "bastion" })
    source_ami_filter {
      filters     = { name = coalesce(var.source_ami_name, "al2023-ami-2023.*-x86_64") }
      owners      = length(var.source_ami_owners) > 0 ? var.source_ami_owners : ["amazon"]
      most_recent = true
    }
  }

  provisioner "shell" {
    except = local.provision ? [] : ["amazon-ebs.bastion"]
    inline = [
      "sudo dnf upgrade -y --security",
      "sudo dnf install -y amazon-ssm-agent",
      "sudo systemctl enable amazon-ssm-agent",
      "printf 'PermitRootLogin no\\nPasswordAuthentication no\\n' | sudo tee /etc/ssh/sshd_config.d/90-refarch.conf",
    ]
  }
}
