output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster (services are placed with it)."
  value       = aws_ecs_cluster.this.arn
}

output "security_group_id" {
  description = "Security group of the container instances."
  value       = aws_security_group.instances.id
}

output "asg_name" {
  description = "Name of the Auto Scaling group of container instances."
  value       = aws_autoscaling_group.instances.name
}
