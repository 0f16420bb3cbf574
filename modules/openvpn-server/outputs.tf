output "instance_id" {
  description = "ID of the OpenVPN server's instance."
  value       = aws_instance.this.id
}

output "public_ip" {
  description = "Elastic IP that VPN clients connect to."
  value       = aws_eip.this.public_ip
}

output "security_group_id" {
  description = "Security group of the server (allow it in the app VPCs' security groups)."
  value       = aws_security_group.this.id
}

output "iam_role_arn" {
  description = "ARN of the server's IAM role."
  value       = aws_iam_role.this.arn
}

output "pki_secret_names" {
  description = "The Secrets Manager secrets the server reads its PKI from."
  value       = [var.pki_server_secret_name, var.pki_crl_secret_name]
}
