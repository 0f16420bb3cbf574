output "detector_id" {
  description = "ID of the GuardDuty detector."
  value       = aws_guardduty_detector.this.id
}

output "findings_rule_arn" {
  description = "ARN of the EventBridge rule that sends findings to the topic, or null."
  value       = var.notify_findings ? aws_cloudwatch_event_rule.findings[0].arn : null
}
