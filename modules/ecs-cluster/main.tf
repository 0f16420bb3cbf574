# An ECS cluster on an Auto Scaling group of EC2 container instances with their IAM role.

terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

resource "aws_ecs_cluster" "this" {
  name = var.cluster_name
  tags = var.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_security_group" "instances" {
  name        = "${var.cluster_name}-instances"
  description = "Container instances of ${var.cluster_name}"
  vpc_id      = var.vpc_id
  tags        = var.tags

  dynamic "ingress" {
    for_each = length(var.allow_ssh_from_security_group_ids) > 0 ? [1] : []
    content {
      description     = "SSH from the VPN"
      from_port       = 22
      to_port         = 22
      protocol        = "tcp"
      security_groups = var.allow_ssh_from_security_group_ids
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

resource "aws_iam_role" "instances" {
  name               = "${var.cluster_name}-instances"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "ecs" {
  role       = aws_iam_role.instances.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "instances" {
  name = "${var.cluster_name}-instances"
  role = aws_iam_role.instances.name
  tags = var.tags
}

resource "aws_launch_template" "instances" {
  name_prefix            = "${var.cluster_name}-"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  key_name               = var.keypair_name
  vpc_security_group_ids = [aws_security_group.instances.id]
  user_data              = base64encode("#!/bin/bash\necho ECS_CLUSTER=${var.cluster_name} >> /etc/ecs/ecs.config\n")

  iam_instance_profile {
    arn = aws_iam_instance_profile.instances.arn
  }

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = var.cluster_name })
  }

  tags = var.tags
}

resource "aws_autoscaling_group" "instances" {
  name                = var.cluster_name
  min_size            = var.min_size
  max_size            = var.max_size
  vpc_zone_identifier = var.subnet_ids

  launch_template {
    id      = aws_launch_template.instances.id
    version = "$Latest"
  }

  dynamic "tag" {
    for_each = merge(var.tags, { Name = var.cluster_name })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}
