"""A unit whose providers cannot be downloaded fails with a hint, decided by the retry
catalogue from what the real Terraform 1.0.3 prints (offline: an empty provider mirror)."""

from __future__ import annotations

from pathlib import Path

import pytest

from refarch.engines.terraform import TerraformEngine
from refarch.exec.retry import DEFAULT_RULES, decide
from tests.integration.test_terraform_engine import Harness, harness  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

NEEDS_PROVIDER = """
terraform {
  required_providers {
    null = { source = "hashicorp/null", version = "3.1.0" }
  }
}

resource "null_resource" "this" {}
"""
# Terraform's CLI configuration: providers only from an (empty) local mirror, never the network.
MIRROR_ONLY = """
provider_installation {
  filesystem_mirror {
    path = "%s"
  }
}
"""


def test_a_provider_that_cannot_be_downloaded_gets_a_hint(harness: Harness, tmp_path: Path) -> None:  # noqa: F811
    module = tmp_path / "modules" / "needs-provider"
    module.mkdir()
    (module / "main.tf").write_text(NEEDS_PROVIDER, encoding="utf-8")
    mirror = tmp_path / "empty-mirror"
    mirror.mkdir()
    config = tmp_path / "terraformrc"
    config.write_text(MIRROR_ONLY % mirror, encoding="utf-8")
    harness.base_env["TF_CLI_CONFIG_FILE"] = str(config)
    path = "dev/us-east-1/needs-provider"
    harness.add_unit(path, "dev", "needs-provider", {})

    result = TerraformEngine(harness.settings).execute(harness.job(path))
    assert not result.process.ok
    decision = decide(DEFAULT_RULES, result.process, 1)
    assert not decision.retry, result.process.output_tail
    assert decision.rule is not None and decision.rule.name == "provider-download"
    assert decision.hint is not None and "provider mirror" in decision.hint
