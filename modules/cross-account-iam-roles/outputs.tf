output "role_arns" {
  description = "ARNs of the roles made in this account, by role name (without prefix)."
  value       = { for k, r in aws_iam_role.this : k => r.arn }
}

output "group_policy_groups" {
  description = "Groups that got a policy to assume roles in the other accounts."
  value       = sort(keys(aws_iam_group_policy.assume))
}
