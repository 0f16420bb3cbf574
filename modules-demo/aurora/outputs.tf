output "cluster_identifier" {
  description = "Identifier of the cluster."
  value       = var.name
}

output "cluster_arn" {
  description = "ARN of the cluster."
  value       = "arn:aws:rds:demo:000000000000:cluster:${var.name}"
}

output "endpoint" {
  description = "Writer endpoint (host name)."
  value       = "${var.name}.cluster-${local.suffix}.demo.rds.amazonaws.com"
}

output "reader_endpoint" {
  description = "Reader endpoint (host name), load-balanced over the readers."
  value       = "${var.name}.cluster-ro-${local.suffix}.demo.rds.amazonaws.com"
}

output "port" {
  description = "Database port."
  value       = local.port
}

output "database_name" {
  description = "Name of the database created in the cluster."
  value       = var.database_name
}

output "security_group_id" {
  description = "Security group of the cluster."
  value       = "sg-${substr(sha1("${var.name}-db"), 0, 17)}"
}
