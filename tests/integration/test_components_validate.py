"""The components of issue 24 (alb, aurora, ...): `terraform validate` with the real AWS provider.

One Terraform root calls every new module (tests/integration/components_root.py); it is
initialised from the machine's filesystem mirror of hashicorp/aws (REFARCH_TF_PLUGIN_MIRROR,
default /opt/tf-plugins; skipped without one) and validated. Cost: one provider start, 10 s idle
(60 s measured on a loaded machine).
`terraform fmt` and the twins' interfaces are checked for every module elsewhere
(test_new_and_validate.py, test_render.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from refarch.engines.terraform import pinned_terraform_binary
from tests.integration.components_root import components_root

ROOT = Path(__file__).resolve().parents[2]
MIRROR = Path(os.environ.get("REFARCH_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
TERRAFORM = pinned_terraform_binary() or shutil.which("terraform") or "terraform"
# The components issue 24 added; the first ten are proven by the real-architecture tests.
COMPONENTS = (
    "alarms",
    "alb",
    "aurora",
    "aws-config",
    "cross-account-iam-roles",
    "elasticache-redis",
    "guardduty",
    "lambda",
    "route53-subzone",
    "static-website",
    "vpc-flow-logs",
)
CONSTRAINT = '">= 5.0, < 6.0"'

pytestmark = pytest.mark.integration


def test_every_component_has_a_readme_the_provider_constraint_and_tags() -> None:
    for name in COMPONENTS:
        folder = ROOT / "modules" / name
        text = "".join(p.read_text() for p in sorted(folder.glob("*.tf")))
        assert (folder / "README.md").is_file(), name
        assert f"version = {CONSTRAINT}" in text or f"version               = {CONSTRAINT}" in text, name
        assert 'variable "tags"' in text, name
        for match in re.finditer(r'variable "force_destroy" \{[^}]*default\s*=\s*(\w+)', text):
            assert match.group(1) == "false", name
        assert "force_destroy = true" not in text, name
        assert (ROOT / "modules-demo" / name / "main.tf").is_file(), f"{name} has no demo twin"


@pytest.mark.skipif(
    not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir(),
    reason=f"no filesystem mirror of the AWS provider at {MIRROR}",
)
def test_every_component_validates_with_the_real_provider(tmp_path: Path) -> None:
    """One root calls every component (one provider start, about 10 s): init from the mirror,
    validate, and no deprecation warning."""
    package = tmp_path / "0123abcd.zip"
    package.write_bytes(b"")
    (tmp_path / "main.tf").write_text(components_root(None, package))
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull}
    for argv in (
        ["init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={MIRROR}"],
        ["validate", "-no-color"],
    ):
        done = subprocess.run(
            [TERRAFORM, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"terraform {argv[0]}: {done.stdout}{done.stderr}"
    assert "deprecated" not in done.stdout.lower() + done.stderr.lower(), done.stdout + done.stderr
