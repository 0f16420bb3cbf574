"""One Terraform root that calls every component of issue 24 with the real AWS provider.

Shared by the validate test and the apply test on moto, so the ten provider start-ups of ten
separate roots become one. `supported` leaves out what the emulator cannot run (see
UNSUPPORTED); the validate test keeps everything.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY_ACCOUNT = "111111111111"
REGION = "us-east-1"
DOMAIN = "acme.test"
ENDPOINT_SERVICES = (
    *("acm", "cloudfront", "cloudwatch", "cloudwatchlogs", "configservice", "ec2", "elasticache"),
    *("elbv2", "events", "guardduty", "iam", "lambda", "rds", "route53", "s3", "sns", "sts"),
)

# Component -> why the emulator (moto 5.2) cannot apply it with the real provider; refarch
# then validates it (this file's validate test) and renders it, and the user's AWS applies it.
UNSUPPORTED = {
    "elasticache-redis": (
        "moto 5.2 makes the replication group but not its member cache clusters "
        "(DescribeCacheClusters <id>-001: CacheClusterNotFound)"
    ),
}


def provider_block(endpoint: str | None, alias: str | None = None) -> str:
    lines = [f'  region = "{REGION}"']
    if alias:
        lines.insert(0, f'  alias  = "{alias}"')
    if endpoint:
        lines += [
            '  access_key                  = "test"',
            '  secret_key                  = "test"',
            "  skip_credentials_validation = true",
            "  skip_requesting_account_id  = false",
            "  skip_metadata_api_check     = true",
            "  s3_use_path_style           = true",
            "  endpoints {",
            *(f'    {s} = "{endpoint}"' for s in ENDPOINT_SERVICES),
            "  }",
        ]
    lines += ["  default_tags {", '    tags = { ManagedBy = "refarch-test" }', "  }"]
    return 'provider "aws" {\n' + "\n".join(lines) + "\n}\n"


def components_root(endpoint: str | None, package: Path, *, skip: frozenset[str] = frozenset()) -> str:
    """main.tf of the root; `package` is the zip the lambda modules deploy."""
    modules = ROOT / "modules"
    blocks = {
        "alb": f"""
module "alb_public" {{
  source             = "{modules}/alb"
  name               = "acme-dev-public"
  vpc_id             = aws_vpc.this.id
  vpc_cidr_block     = aws_vpc.this.cidr_block
  subnet_ids         = aws_subnet.this[*].id
  certificate_domain = "*.{DOMAIN}"
  zone_id            = aws_route53_zone.this.zone_id
  record_name        = "app.{DOMAIN}"
  tags               = local.tags
  depends_on         = [aws_internet_gateway.this]
}}

module "alb_internal" {{
  source             = "{modules}/alb"
  name               = "acme-dev-internal"
  internal           = true
  vpc_id             = aws_vpc.this.id
  vpc_cidr_block     = aws_vpc.this.cidr_block
  subnet_ids         = aws_subnet.this[*].id
  certificate_domain = "*.internal.{DOMAIN}"
  allowed_cidr_blocks = [aws_vpc.this.cidr_block]
  tags               = local.tags
}}
""",
        "aurora": f"""
module "aurora" {{
  source              = "{modules}/aurora"
  name                = "acme-dev-db"
  instance_class      = "db.r6g.large"
  vpc_id              = aws_vpc.this.id
  subnet_ids          = aws_subnet.this[*].id
  allowed_cidr_blocks = [aws_vpc.this.cidr_block]
  master_password     = var.master_password
  skip_final_snapshot = true
  tags                = local.tags
}}
""",
        "elasticache-redis": f"""
module "redis" {{
  source              = "{modules}/elasticache-redis"
  name                = "acme-dev-cache"
  vpc_id              = aws_vpc.this.id
  subnet_ids          = aws_subnet.this[*].id
  allowed_cidr_blocks = [aws_vpc.this.cidr_block]
  apply_immediately   = true
  tags                = local.tags
}}
""",
        "lambda": f"""
module "lambda_api" {{
  source         = "{modules}/lambda"
  function_name  = "acme-dev-hello"
  package_bucket = aws_s3_object.package.bucket
  package_key    = aws_s3_object.package.key
  environment    = {{ GREETING = "hello" }}
  tags           = local.tags
}}

module "lambda_scheduled" {{
  source              = "{modules}/lambda"
  function_name       = "acme-dev-cleanup"
  package_bucket      = aws_s3_object.package.bucket
  package_key         = aws_s3_object.package.key
  schedule_expression = "rate(1 hour)"
  tags                = local.tags
}}
""",
        "static-website": f"""
module "static_website" {{
  source             = "{modules}/static-website"
  providers          = {{ aws = aws, aws.us_east_1 = aws.us_east_1 }}
  domain_name        = "static.{DOMAIN}"
  certificate_domain = "static.{DOMAIN}"
  bucket_name        = "acme-dev-static-website"
  create_record      = true
  zone_id            = aws_route53_zone.this.zone_id
  force_destroy      = true
  tags               = local.tags
}}
""",
        "vpc-flow-logs": f"""
module "flow_logs" {{
  source  = "{modules}/vpc-flow-logs"
  name    = "acme-dev"
  vpc_id  = aws_vpc.this.id
  tags    = local.tags
}}
""",
        "alarms": f"""
module "alarms" {{
  source       = "{modules}/alarms"
  name         = "acme-dev"
  alert_emails = ["ops@{DOMAIN}"]
  alarms = {{
    lambda-errors = {{
      description         = "The hello function fails"
      namespace           = "AWS/Lambda"
      metric_name         = "Errors"
      dimensions          = {{ FunctionName = "acme-dev-hello" }}
      statistic           = "Sum"
      comparison_operator = "GreaterThanOrEqualToThreshold"
      threshold           = 1
      period              = 300
      evaluation_periods  = 1
    }}
  }}
  tags = local.tags
}}
""",
        "aws-config": f"""
module "aws_config" {{
  # As rendered in security / shared-services (aws-config-local): its own delivery bucket.
  # One recorder per account and region, so the logs-archive delivery is the validated path.
  source         = "{modules}/aws-config"
  name           = "acme-dev"
  create_bucket  = true
  force_destroy  = true
  s3_bucket_name = "acme-dev-config-test"
  managed_rules  = ["S3_BUCKET_PUBLIC_READ_PROHIBITED"]
  tags           = local.tags
}}
""",
        "route53-subzone": f"""
module "subzone" {{
  # The parent zone is in shared-services in the rendered repo; here, in the same account.
  source          = "{modules}/route53-subzone"
  providers       = {{ aws = aws, aws.parent = aws }}
  domain_name     = "dev.{DOMAIN}"
  parent_zone_id  = aws_route53_zone.this.zone_id
  parent_role_arn = "arn:aws:iam::222222222222:role/route53-subzone-delegation"
  tags            = local.tags
}}
""",
        "guardduty": f"""
module "guardduty" {{
  source          = "{modules}/guardduty"
  name            = "acme-dev"
  notify_findings = true
  alert_topic_arn = module.alarms.alert_topic_arn
  tags            = local.tags
}}
""",
        "cross-account-iam-roles": f"""
module "roles" {{
  source             = "{modules}/cross-account-iam-roles"
  name_prefix        = "acme"
  trusted_account_id = "{SECURITY_ACCOUNT}"
  tags               = local.tags
}}

resource "aws_iam_group" "full_access" {{
  name = "acme-full-access"
}}

module "roles_security_half" {{
  source                 = "{modules}/cross-account-iam-roles"
  name_prefix            = "acme"
  group_assume_role_arns = {{ (aws_iam_group.full_access.name) = values(module.roles.role_arns) }}
}}
""",
    }
    base = f"""
{provider_block(endpoint)}
{provider_block(endpoint, "us_east_1")}
variable "master_password" {{
  type      = string
  sensitive = true
}}

locals {{
  tags = {{ Organization = "acme", Environment = "dev" }}
}}

resource "aws_vpc" "this" {{
  cidr_block = "10.3.0.0/16"
}}

resource "aws_internet_gateway" "this" {{
  vpc_id = aws_vpc.this.id
}}

resource "aws_subnet" "this" {{
  count             = 2
  vpc_id            = aws_vpc.this.id
  cidr_block        = cidrsubnet(aws_vpc.this.cidr_block, 8, count.index)
  availability_zone = "{REGION}${{["a", "b"][count.index]}}"
}}

resource "aws_route53_zone" "this" {{
  name          = "{DOMAIN}"
  force_destroy = true
}}

resource "aws_s3_bucket" "artifacts" {{
  bucket        = "acme-dev-{REGION}-artifacts"
  force_destroy = true
}}

resource "aws_s3_object" "package" {{
  bucket = aws_s3_bucket.artifacts.id
  key    = "lambda/hello/{package.stem}.zip"
  source = "{package}"
}}

"""
    guardduty_needs = {"guardduty": "alarms"}
    wanted = [name for name in blocks if name not in skip and guardduty_needs.get(name, name) not in skip]
    return base + "".join(blocks[name] for name in wanted)
