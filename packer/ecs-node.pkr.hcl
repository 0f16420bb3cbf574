# The ECS/EKS cluster node: Amazon's ECS-optimized Amazon Linux 2 with the SSM and CloudWatch
# agents and security updates. For EKS, set source_ami_name = "amazon-eks-node-<version>-v*".

build {
  source "source.amazon-ebs.base" {
    name            = "ecs-node"
    ami_name        = "refarch-ecs-node-${local.suffix}"
    ami_description = "refarch ECS/EKS cluster node"
    ssh_username    = "ec2-user"
    tags            = merge(local.common_tags, { "Name" = "refarch-ecs-node", "refarch:template" = "ecs-node" })
    source_ami_filter {
      filters     = { name = coalesce(var.source_ami_name, "amzn2-ami-ecs-hvm-*-x86_64-ebs") }
      owners      = length(var.source_ami_owners) > 0 ? var.source_ami_owners : ["amazon"]
      most_recent = true
    }
  }

  provisioner "shell" {
    except = local.provision ? [] : ["amazon-ebs.ecs-node"]
    inline = [
      "sudo yum update -y --security",
      "sudo yum install -y amazon-ssm-agent amazon-cloudwatch-agent",
      "sudo systemctl enable amazon-ssm-agent",
      "echo 'ECS_ENABLE_CONTAINER_METADATA=true' | sudo tee -a /etc/ecs/ecs.config",
    ]
  }
}
