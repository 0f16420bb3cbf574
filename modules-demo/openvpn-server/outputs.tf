output "instance_id" {
  description = "ID of the OpenVPN server's instance."
  value       = "i-${local.id}"
}

output "public_ip" {
  description = "Elastic IP that VPN clients connect to."
  value       = cidrhost("203.0.113.0/24", parseint(substr(local.id, 0, 2), 16))
}

output "security_group_id" {
  description = "Security group of the server (allow it in the app VPCs' security groups)."
  value       = "sg-${local.id}"
}

output "iam_role_arn" {
  description = "ARN of the server's IAM role."
  value       = "arn:aws:iam::000000000000:role/${var.name}"
}

output "pki_secret_names" {
  description = "The Secrets Manager secrets the server reads its PKI from."
  value       = [var.pki_server_secret_name, var.pki_crl_secret_name]
}
