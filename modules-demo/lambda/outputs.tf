output "function_name" {
  description = "Name of the function."
  value       = var.function_name
}

output "function_arn" {
  description = "ARN of the function."
  value       = local.arn
}

output "role_arn" {
  description = "ARN of the function's IAM role (attach more policies to it)."
  value       = "arn:aws:iam::000000000000:role/${var.function_name}-lambda"
}

output "log_group_name" {
  description = "Log group of the function."
  value       = "/aws/lambda/${var.function_name}"
}

output "schedule_rule_arn" {
  description = "ARN of the EventBridge schedule rule, or null when not scheduled."
  value       = var.schedule_expression == null ? null : "arn:aws:events:demo:000000000000:rule/${var.function_name}-schedule"
}
