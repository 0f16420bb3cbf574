output "role_arns" {
  description = "ARNs of the roles made in this account, by role name (without prefix)."
  value       = { for k in keys(local.roles) : k => "arn:aws:iam::000000000000:role/${var.name_prefix}-${k}" }
}

output "group_policy_groups" {
  description = "Groups that got a policy to assume roles in the other accounts."
  value       = sort(keys(var.group_assume_role_arns))
}
