output "repository_urls" {
  description = "Repository URLs (registry/name, without a tag), by repository name."
  value       = { for name in var.repository_names : name => "${local.registry}/${name}" }
}

output "repository_arns" {
  description = "Repository ARNs, by repository name."
  value       = { for name in var.repository_names : name => "arn:aws:ecr:demo:000000000000:repository/${name}" }
}
