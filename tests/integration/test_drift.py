"""`refarch drift` with real Terraform 1.0.3 and the moto server: a change made behind
Terraform's back is found and said to be of the right kind.

- provider-less (a modules-demo module, outputs only): a changed input is **code** drift;
- real provider (hashicorp/aws from the filesystem mirror, REFARCH_TF_PLUGIN_MIRROR; skipped
  without it): a bucket tag changed through boto3 is **infrastructure** drift.

Plans run with -lock=false: a state lock someone else holds does not stop the check, and the
check leaves no lock. Cost: about 40 s for both tests on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from refarch.jobs.drift import DriftRequest, drift
from refarch.planner import plan as make_plan
from refarch.runner.ledger import find_ledger, read_events
from refarch.settings import EngineSettings
from tests.integration.test_saved_plans_terraform import refarch
from tests.integration.test_terraform_engine import (
    ECHO_UNIT,
    LOCK_TABLE,
    REGION,
    Harness,
    bucket_for,
    write_live,
)
from tests.unit.test_contracts import check

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MIRROR = Path(os.environ.get("REFARCH_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
MIRROR_CONFIG = 'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n'
VPC = "dev/us-east-1/vpc"
ECHO = "security/us-east-1/echo"
VPC_UNIT = """
include "root" {
  path = find_in_parent_folders("root.hcl")
}

terraform {
  source = "../../../../modules//vpc"
}

inputs = {
  vpc_name   = "dev"
  cidr_block = "%s"
}
"""


@pytest.fixture
def harness(tmp_path: Path, moto_server: Any) -> Harness:
    h = Harness(tmp_path, moto_server.endpoint_url)
    for account in ("security", "dev"):
        h.make_backend(account)
    shutil.copytree(REPO / "modules-demo" / "vpc", tmp_path / "modules" / "vpc")  # symlink: copied
    return h


def test_a_changed_input_of_a_provider_less_unit_is_code_drift(harness: Harness, tmp_path: Path) -> None:
    write_live(harness.root, {VPC: VPC_UNIT % "10.0.0.0/16", ECHO: ECHO_UNIT % "kept"})
    applied = refarch(harness, "apply", str(harness.root), "--engine", "terraform", "-y")
    assert applied.returncode == 0, applied.stderr

    folder = tmp_path / "drift"
    same = refarch(harness, "drift", str(harness.root), "--engine", "terraform", "--out-dir", str(folder))
    assert same.returncode == 0, same.stderr
    assert "2 in_sync, 0 drifted, 0 failed" in same.stderr

    # The code changes behind the state's back; someone else holds the unit's state lock.
    (harness.root / VPC / "terragrunt.hcl").write_text(VPC_UNIT % "10.9.0.0/16")
    lock_id = f"{bucket_for('dev')}/{VPC}/terraform.tfstate"
    harness.client("dynamodb", "dev").put_item(
        TableName=LOCK_TABLE, Item={"LockID": {"S": lock_id}, "Info": {"S": "{}"}}
    )
    report = tmp_path / "drift.json"
    found = refarch(
        harness,
        "drift",
        str(harness.root),
        "--engine",
        "terraform",
        "--out-dir",
        str(folder),
        "--report",
        str(report),
    )
    assert found.returncode == 2, found.stderr  # drift found (-lock=false: the lock did not stop it)
    document = json.loads(report.read_text())
    check("drift", document)
    units = {u["unit"]: u for u in document["units"]}
    assert units[ECHO]["status"] == "in_sync"
    vpc = units[VPC]
    assert (vpc["status"], vpc["kinds"], vpc["resources"]) == ("drifted", ["code"], [])
    assert "vpc_cidr_block" in vpc["outputs"] and "vpc_id" in vpc["outputs"]
    assert "| `dev/us-east-1/vpc` | dev | code | outputs |" in (folder / "summary.md").read_text()
    assert harness.locks("dev") == [lock_id]  # the other one's lock, untouched; none of ours

    # One typed `drift` event per unit in the ledger, each following the schema.
    events = read_events(find_ledger(harness.root, document["run_id"]))
    for event in events:
        check("ledger-event", event)
    drift_events = {e["unit"]: e for e in events if e["event"] == "drift"}
    assert drift_events[VPC]["status"] == "drifted" and drift_events[VPC]["kinds"] == ["code"]
    assert drift_events[ECHO]["status"] == "in_sync"

    history = refarch(harness, "history", str(harness.root), "--drift", "--json")
    rows = {r["unit"]: r for r in map(json.loads, history.stdout.splitlines())}
    assert rows[VPC]["status"] == "drifted" and rows[VPC]["drift_kinds"] == ["code"]
    assert rows[VPC]["back_in_sync"] is None and rows[ECHO]["last_drifted"] is None

    bad = refarch(harness, "drift", str(harness.root), "--no-such-option")
    assert bad.returncode == 1 and "No such option" in bad.stderr  # 2 always means drift


BUCKET_MODULE = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "bucket" { type = string }
variable "owner" { type = string }

resource "aws_s3_bucket" "this" {
  bucket = var.bucket
  tags   = { Owner = var.owner }
}
"""
PROVIDER = """provider "aws" {{
  region                      = "{region}"
  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {{
    s3  = "{endpoint}"
    sts = "{endpoint}"
  }}
}}
"""


@pytest.mark.skipif(
    not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir(),
    reason=f"no filesystem mirror of the AWS provider at {MIRROR}",
)
def test_a_tag_changed_through_boto3_is_infrastructure_drift(
    harness: Harness, tmp_path: Path, moto_server: Any, aws_plugin_cache: Path
) -> None:
    from refarch.engines.terraform import TerraformEngine
    from refarch.models import Generate
    from refarch.runner.run import RunOptions, run

    (tmp_path / "modules" / "bucket").mkdir()
    (tmp_path / "modules" / "bucket" / "main.tf").write_text(BUCKET_MODULE)
    cli_config = tmp_path / "terraform.rc"
    cli_config.write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n'
    )
    path = "dev/us-east-1/bucket"
    provider = Generate(
        "provider", "provider.tf", PROVIDER.format(region=REGION, endpoint=moto_server.endpoint_url)
    )
    harness.add_unit(
        path, "dev", "bucket", {"bucket": "acme-dev-drift", "owner": "platform"}, generate=(provider,)
    )
    (harness.root / path / "terragrunt.hcl").write_text("# written by the test: the unit is in-memory\n")
    env = {**harness.base_env, "TF_CLI_CONFIG_FILE": str(cli_config)}
    harness.settings = replace(
        harness.settings, engine=EngineSettings(plugin_cache_dir=str(aws_plugin_cache))
    )
    engine = TerraformEngine(harness.settings)
    applied = run(
        make_plan(harness.repo, "apply"),
        "apply",
        harness.settings,
        engine=engine,
        base_env=env,
        options=RunOptions(history=False),
    )
    assert applied.ok, applied.units[path].message

    s3 = harness.client("s3", "dev")
    s3.put_bucket_tagging(Bucket="acme-dev-drift", Tagging={"TagSet": [{"Key": "Owner", "Value": "someone"}]})
    result = drift(
        DriftRequest(harness.root, out_dir=tmp_path / "drift", engine=engine, env=env),
        plan=make_plan(harness.repo, "plan"),
        settings=harness.settings,
        sessions=harness.sessions,
    )
    (unit,) = result.units
    assert result.exit_code == 2, unit.message
    check("drift", result.to_json())
    assert unit.status == "drifted" and unit.kinds == ("infrastructure",)
    (diff,) = unit.resources
    assert (
        diff.address == "aws_s3_bucket.this" and diff.kind == "infrastructure" and "tags" in diff.attributes
    )
    assert harness.locks("dev") == []
