output "detector_id" {
  description = "ID of the GuardDuty detector."
  value       = local.detector_id
}

output "findings_rule_arn" {
  description = "ARN of the EventBridge rule that sends findings to the topic, or null."
  value       = var.notify_findings ? "arn:aws:events:demo:000000000000:rule/${var.name}-guardduty-findings" : null
}
