# GuardDuty in the account and region, its findings sent to the alert topic by EventBridge.

terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

resource "aws_guardduty_detector" "this" {
  enable                       = true
  finding_publishing_frequency = var.finding_publishing_frequency
  tags                         = var.tags
}

resource "aws_cloudwatch_event_rule" "findings" {
  count       = var.notify_findings ? 1 : 0
  name        = "${var.name}-guardduty-findings"
  description = "GuardDuty findings of severity ${var.min_severity} or more"
  tags        = var.tags
  event_pattern = jsonencode({
    source        = ["aws.guardduty"]
    "detail-type" = ["GuardDuty Finding"]
    detail        = { severity = [{ numeric = [">=", var.min_severity] }] }
  })
}

resource "aws_cloudwatch_event_target" "findings" {
  count = var.notify_findings ? 1 : 0
  rule  = aws_cloudwatch_event_rule.findings[0].name
  arn   = var.alert_topic_arn
}
