output "flow_log_id" {
  description = "ID of the flow log."
  value       = "fl-${substr(sha1(var.vpc_id), 0, 17)}"
}

output "log_group_name" {
  description = "Log group the flow logs go to."
  value       = local.log_group
}

output "log_group_arn" {
  description = "ARN of the log group."
  value       = "arn:aws:logs:demo:000000000000:log-group:${local.log_group}"
}
