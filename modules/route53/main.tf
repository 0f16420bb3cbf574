# The organisation's public hosted zone. An existing zone is imported into this unit's state by
# `refarch dns import` (terraform import aws_route53_zone.primary_domain ZONE_ID), so the
# address below is part of refarch's contract ([dns] address in refarch.toml changes it).

terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

resource "aws_route53_zone" "primary_domain" {
  name    = var.domain_name
  comment = var.comment
  tags    = var.tags
}

# The role the app accounts' route53-subzone units assume to write their NS delegation into
# this zone (and nothing else): the zone is in this account, their subzones in theirs.
data "aws_iam_policy_document" "delegation_trust" {
  count = length(var.delegation_account_ids) > 0 ? 1 : 0
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [for id in var.delegation_account_ids : "arn:aws:iam::${id}:root"]
    }
  }
}

data "aws_iam_policy_document" "delegation" {
  count = length(var.delegation_account_ids) > 0 ? 1 : 0
  statement {
    actions   = ["route53:ChangeResourceRecordSets", "route53:GetHostedZone", "route53:ListResourceRecordSets"]
    resources = [aws_route53_zone.primary_domain.arn]
  }
  statement {
    actions   = ["route53:GetChange"]
    resources = ["arn:aws:route53:::change/*"]
  }
}

resource "aws_iam_role" "delegation" {
  count              = length(var.delegation_account_ids) > 0 ? 1 : 0
  name               = var.delegation_role_name
  assume_role_policy = data.aws_iam_policy_document.delegation_trust[0].json
  tags               = var.tags
}

resource "aws_iam_role_policy" "delegation" {
  count  = length(var.delegation_account_ids) > 0 ? 1 : 0
  name   = "delegate-subzones"
  role   = aws_iam_role.delegation[0].id
  policy = data.aws_iam_policy_document.delegation[0].json
}
