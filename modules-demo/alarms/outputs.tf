output "alert_topic_arn" {
  description = "ARN of the SNS alert topic: other alarms and budgets notify it."
  value       = "arn:aws:sns:demo:000000000000:${local.topic}"
}

output "alarm_arns" {
  description = "ARNs of the alarms, by short name."
  value       = { for k in keys(var.alarms) : k => "arn:aws:cloudwatch:demo:000000000000:alarm:${var.name}-${k}" }
}
