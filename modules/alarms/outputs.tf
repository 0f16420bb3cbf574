output "alert_topic_arn" {
  description = "ARN of the SNS alert topic: other alarms and budgets notify it."
  value       = aws_sns_topic.alerts.arn
}

output "alarm_arns" {
  description = "ARNs of the alarms, by short name."
  value       = { for k, a in aws_cloudwatch_metric_alarm.this : k => a.arn }
}
