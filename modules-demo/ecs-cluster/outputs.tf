output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = var.cluster_name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster (services are placed with it)."
  value       = "arn:aws:ecs:demo:000000000000:cluster/${var.cluster_name}"
}

output "security_group_id" {
  description = "Security group of the container instances."
  value       = "sg-${local.id}"
}

output "asg_name" {
  description = "Name of the Auto Scaling group of container instances."
  value       = var.cluster_name
}
