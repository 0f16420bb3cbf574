output "service_name" {
  description = "Name of the ECS service."
  value       = var.service_name
}

output "service_id" {
  description = "ID (ARN) of the ECS service."
  value       = "arn:aws:ecs:demo:000000000000:service/${local.cluster}/${var.service_name}"
}

output "task_definition_arn" {
  description = "ARN of the task definition revision that is deployed."
  value       = "arn:aws:ecs:demo:000000000000:task-definition/${var.service_name}:${local.revision}"
}

output "log_group_name" {
  description = "CloudWatch log group of the container."
  value       = "/ecs/${var.service_name}"
}
