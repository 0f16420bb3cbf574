output "group_names" {
  description = "Full names of the groups, by group key."
  value       = { for k, g in aws_iam_group.this : k => g.name }
}

output "group_arns" {
  description = "ARNs of the groups, by group key."
  value       = { for k, g in aws_iam_group.this : k => g.arn }
}

output "user_arns" {
  description = "ARNs of the users created here, as a list (for key policies and trust policies)."
  value       = [for u in aws_iam_user.this : u.arn]
}
