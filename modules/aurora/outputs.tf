output "cluster_identifier" {
  description = "Identifier of the cluster."
  value       = aws_rds_cluster.this.cluster_identifier
}

output "cluster_arn" {
  description = "ARN of the cluster."
  value       = aws_rds_cluster.this.arn
}

output "endpoint" {
  description = "Writer endpoint (host name)."
  value       = aws_rds_cluster.this.endpoint
}

output "reader_endpoint" {
  description = "Reader endpoint (host name), load-balanced over the readers."
  value       = aws_rds_cluster.this.reader_endpoint
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
  value       = aws_security_group.this.id
}
