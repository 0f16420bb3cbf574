output "function_name" {
  description = "Name of the function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's IAM role (attach more policies to it)."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Log group of the function."
  value       = aws_cloudwatch_log_group.this.name
}

output "schedule_rule_arn" {
  description = "ARN of the EventBridge schedule rule, or null when not scheduled."
  value       = var.schedule_expression == null ? null : aws_cloudwatch_event_rule.schedule[0].arn
}
