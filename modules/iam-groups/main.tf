# IAM groups with managed policies, optional users, and an MFA-required policy on every group.

terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

locals {
  attachments = flatten([
    for group, policies in var.groups : [
      for policy in policies : { group = group, policy = policy }
    ]
  ])
}

resource "aws_iam_group" "this" {
  for_each = var.groups
  name     = "${var.name_prefix}-${each.key}"
}

resource "aws_iam_group_policy_attachment" "this" {
  for_each   = { for a in local.attachments : "${a.group}:${a.policy}" => a }
  group      = aws_iam_group.this[each.value.group].name
  policy_arn = each.value.policy
}

data "aws_iam_policy_document" "require_mfa" {
  statement {
    sid    = "DenyAllExceptMfaSetUpWithoutMfa"
    effect = "Deny"
    not_actions = [
      "iam:ChangePassword",
      "iam:CreateVirtualMFADevice",
      "iam:EnableMFADevice",
      "iam:GetUser",
      "iam:ListMFADevices",
      "iam:ListVirtualMFADevices",
      "sts:GetSessionToken",
    ]
    resources = ["*"]
    condition {
      test     = "BoolIfExists"
      variable = "aws:MultiFactorAuthPresent"
      values   = ["false"]
    }
  }
}

resource "aws_iam_group_policy" "require_mfa" {
  for_each = var.require_mfa ? var.groups : {}
  name     = "require-mfa"
  group    = aws_iam_group.this[each.key].name
  policy   = data.aws_iam_policy_document.require_mfa.json
}

resource "aws_iam_user" "this" {
  for_each      = var.users
  name          = each.key
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_iam_user_group_membership" "this" {
  for_each = var.users
  user     = aws_iam_user.this[each.key].name
  groups   = [for g in each.value : aws_iam_group.this[g].name]
}
