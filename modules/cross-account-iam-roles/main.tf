# Cross-account access from the security account, in two halves that the units use apart:
# in every other account, roles the security account may assume (with MFA); in the security
# account, policies on its IAM groups that let their members assume those roles.

terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

data "aws_iam_policy_document" "trust" {
  count = var.trusted_account_id == null ? 0 : 1
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${var.trusted_account_id}:root"]
    }
    dynamic "condition" {
      for_each = var.require_mfa ? [1] : []
      content {
        test     = "Bool"
        variable = "aws:MultiFactorAuthPresent"
        values   = ["true"]
      }
    }
  }
}

resource "aws_iam_role" "this" {
  for_each             = var.trusted_account_id == null ? {} : var.roles
  name                 = "${var.name_prefix}-${each.key}"
  description          = "Assumed from account ${var.trusted_account_id} (${each.key})"
  assume_role_policy   = data.aws_iam_policy_document.trust[0].json
  max_session_duration = var.max_session_seconds
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "this" {
  for_each   = { for pair in local.role_policies : "${pair.role}|${pair.policy}" => pair }
  role       = aws_iam_role.this[each.value.role].name
  policy_arn = each.value.policy
}

locals {
  role_policies = flatten([
    for role, policies in(var.trusted_account_id == null ? {} : var.roles) : [
      for policy in policies : { role = role, policy = policy }
    ]
  ])
}

data "aws_iam_policy_document" "assume" {
  for_each = var.group_assume_role_arns
  statement {
    actions   = ["sts:AssumeRole"]
    resources = each.value
  }
}

resource "aws_iam_group_policy" "assume" {
  for_each = var.group_assume_role_arns
  name     = "assume-cross-account-roles"
  group    = each.key
  policy   = data.aws_iam_policy_document.assume[each.key].json
}
