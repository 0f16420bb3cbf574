output "replication_group_id" {
  description = "ID of the replication group."
  value       = var.name
}

output "replication_group_arn" {
  description = "ARN of the replication group."
  value       = "arn:aws:elasticache:demo:000000000000:replicationgroup:${var.name}"
}

output "primary_endpoint" {
  description = "Host name of the primary (writes)."
  value       = "master.${var.name}.${local.suffix}.demo.cache.amazonaws.com"
}

output "reader_endpoint" {
  description = "Host name that spreads reads over the replicas."
  value       = "replica.${var.name}.${local.suffix}.demo.cache.amazonaws.com"
}

output "port" {
  description = "Redis port."
  value       = local.port
}

output "security_group_id" {
  description = "Security group of the cache nodes."
  value       = "sg-${substr(sha1("${var.name}-redis"), 0, 17)}"
}
