output "key_arn" {
  description = "ARN of the customer master key."
  value       = "arn:aws:kms:demo:${local.account}:key/${local.key_id}"
}

output "key_id" {
  description = "ID of the customer master key."
  value       = local.key_id
}

output "alias_name" {
  description = "Alias of the key (alias/<name>)."
  value       = "alias/${var.name}"
}
