output "flow_log_id" {
  description = "ID of the flow log."
  value       = aws_flow_log.this.id
}

output "log_group_name" {
  description = "Log group the flow logs go to."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the log group."
  value       = aws_cloudwatch_log_group.this.arn
}
