"""The Route 53 zone import with real Terraform 1.0.3 and the real AWS provider against moto.

The AWS provider cannot be downloaded here; the test runs when a filesystem mirror of it is on
the machine (REFARCH_TF_PLUGIN_MIRROR, default /opt/tf-plugins), and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from refarch.engines.terraform import TerraformEngine
from refarch.models import Generate
from tests.integration.test_terraform_engine import REGION, Harness, bucket_for

MIRROR = Path(os.environ.get("REFARCH_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
MODULES = Path(__file__).resolve().parents[2] / "modules"
ADDRESS = "aws_route53_zone.primary_domain"
UNIT = "dev/us-east-1/route53"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir(),
        reason=f"no filesystem mirror of the AWS provider at {MIRROR}",
    ),
]

PROVIDER = """provider "aws" {{
  region                      = "{region}"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {{
    route53 = "{endpoint}"
    sts     = "{endpoint}"
  }}
}}
"""


def test_the_existing_zone_lands_in_the_units_state_in_s3_once(moto_server: Any, tmp_path: Path) -> None:
    harness = Harness(tmp_path, moto_server.endpoint_url)
    harness.make_backend("dev")
    shutil.copytree(MODULES / "route53", tmp_path / "modules" / "route53")
    cli_config = tmp_path / "terraform.rc"
    cli_config.write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n'
    )
    provider = Generate(
        "provider", "provider.tf", PROVIDER.format(region=REGION, endpoint=moto_server.endpoint_url)
    )
    harness.add_unit(UNIT, "dev", "route53", {"domain_name": "acme.example"}, generate=(provider,))
    zone = harness.client("route53", "dev").create_hosted_zone(Name="acme.example", CallerReference="x")
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]

    engine = TerraformEngine()
    job = harness.job(UNIT, "import", via_backend_role=False)
    job = replace(job, env={**job.env, "TF_CLI_CONFIG_FILE": str(cli_config)})
    first = engine.import_resource(job, ADDRESS, zone_id)
    assert first.outputs == {"imported": True}, "\n".join(harness.lines[UNIT][-30:])
    body = harness.client("s3", "dev").get_object(Bucket=bucket_for("dev"), Key=f"{UNIT}/terraform.tfstate")
    state = json.loads(body["Body"].read())
    (resource,) = state["resources"]
    assert (resource["type"], resource["name"]) == ("aws_route53_zone", "primary_domain")
    assert resource["instances"][0]["attributes"]["zone_id"] == zone_id

    second = engine.import_resource(job, ADDRESS, zone_id)
    assert second.outputs == {"imported": False}
