output "group_names" {
  description = "Full names of the groups, by group key."
  value       = { for k, _ in var.groups : k => "${var.name_prefix}-${k}" }
}

output "group_arns" {
  description = "ARNs of the groups, by group key."
  value       = { for k, _ in var.groups : k => "arn:aws:iam::${local.account}:group/${var.name_prefix}-${k}" }
}

output "user_arns" {
  description = "ARNs of the users created here, as a list (for key policies and trust policies)."
  value       = [for u in sort(keys(var.users)) : "arn:aws:iam::${local.account}:user/${u}"]
}
