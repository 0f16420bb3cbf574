# An ECS service running one container from ECR, logging to CloudWatch.

terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.service_name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.service_name
  requires_compatibilities = ["EC2"]
  network_mode             = "bridge"
  tags                     = var.tags
  container_definitions = jsonencode([{
    name         = var.service_name
    image        = "${var.image}:${var.image_tag}"
    essential    = true
    cpu          = var.cpu
    memory       = var.memory
    portMappings = [{ containerPort = var.container_port, hostPort = 0, protocol = "tcp" }]
    environment  = [for k in sort(keys(var.environment)) : { name = k, value = var.environment[k] }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = var.service_name
      }
    }
  }])
}

resource "aws_ecs_service" "this" {
  name            = var.service_name
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.this.arn
  desired_count   = var.desired_count
  tags            = var.tags

  deployment_minimum_healthy_percent = 50
  deployment_maximum_percent         = 200
}
