"""Policy checks on real plans: the real hashicorp/aws provider (the filesystem mirror,
REFARCH_TF_PLUGIN_MIRROR; skipped without it), Terraform 1.0.3 and the moto server.

`plan-all --out-dir` of a real module (log-archive: a bucket with inline encryption, its
public access block, a TLS-only policy) and a deliberately insecure unit: only the insecure one
has findings, in its summary and in summary.md. Its saved plan is refused by apply; a plain
apply with `[policy] check_apply` plans, checks and refuses it before anything is made.
Cost: about 60 s on a busy 2-core machine.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from refarch.engines.terraform import TerraformEngine
from refarch.models import Generate, Status
from refarch.planner import plan as make_plan
from refarch.runner.ledger import find_ledger, read_events
from refarch.runner.report import write_report
from refarch.runner.run import RunOptions, run
from refarch.runner.saved_plans import summary_path
from refarch.settings import EngineSettings, settings_from_dict
from tests.integration.test_drift import BUCKET_MODULE, MIRROR, MIRROR_CONFIG, PROVIDER
from tests.integration.test_terraform_engine import REGION, Harness
from tests.unit.test_contracts import check

pytestmark = pytest.mark.integration
needs_provider = pytest.mark.skipif(
    not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir(),
    reason=f"no filesystem mirror of the AWS provider at {MIRROR}",
)

REPO = Path(__file__).resolve().parents[2]
INSECURE = (
    BUCKET_MODULE.split("variable")[0]
    + """
resource "aws_s3_bucket" "open" {
  bucket = "acme-open"
}

resource "aws_s3_bucket_acl" "open" {
  bucket = aws_s3_bucket.open.id
  acl    = "public-read"
}

resource "aws_security_group" "ssh" {
  name = "ssh-from-anywhere"
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_ebs_volume" "data" {
  availability_zone = "us-east-1a"
  size              = 1
}

resource "aws_iam_policy" "admin" {
  name   = "everything"
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }]
  })
}
"""
)
ENDPOINTS = ("s3", "sts", "ec2", "iam")
BAD, LOGS = "dev/us-east-1/insecure", "dev/us-east-1/log-archive"


def provider(endpoint: str) -> Generate:
    text = PROVIDER.format(region=REGION, endpoint=endpoint)
    extra = "".join(f'    {name} = "{endpoint}"\n' for name in ENDPOINTS if name not in ("s3", "sts"))
    return Generate("provider", "provider.tf", text.replace("  endpoints {\n", "  endpoints {\n" + extra))


@pytest.fixture
def harness(tmp_path: Path, moto_server: Any, aws_plugin_cache: Path) -> Harness:
    h = Harness(tmp_path, moto_server.endpoint_url)
    h.make_backend("dev")
    h.settings = replace(h.settings, engine=EngineSettings(plugin_cache_dir=str(aws_plugin_cache)))
    shutil.copytree(REPO / "modules" / "log-archive", tmp_path / "modules" / "log-archive")
    (tmp_path / "modules" / "insecure").mkdir()
    (tmp_path / "modules" / "insecure" / "main.tf").write_text(INSECURE)
    generate = (provider(moto_server.endpoint_url),)
    h.add_unit(BAD, "dev", "insecure", {}, generate=generate)
    h.add_unit(
        LOGS,
        "dev",
        "log-archive",
        {"bucket_name": "acme-logs", "kms_key_arn": "arn:aws:kms:us-east-1:444455556666:key/k"},
        generate=generate,
    )
    for path in (BAD, LOGS):
        (h.root / path / "terragrunt.hcl").write_text("# the unit is in-memory (the test's Harness)\n")
    cli_config = tmp_path / "terraform.rc"
    cli_config.write_text(MIRROR_CONFIG.format(mirror=MIRROR))
    h.base_env["TF_CLI_CONFIG_FILE"] = str(cli_config)
    return h


def go(harness: Harness, action: str, *units: str, settings: Any = None, **options: Any) -> Any:
    settings = settings or harness.settings
    repo = replace(harness.repo, settings=settings)
    selected = make_plan(repo, action, include=list(units), ignore_dependencies=True)
    return run(
        selected,
        action,
        settings,
        engine=TerraformEngine(settings),
        base_env=harness.base_env,
        options=RunOptions(history=False, parallelism=3, **options),
    )


@needs_provider
def test_real_plans_are_checked_and_apply_refuses_the_insecure_unit(harness: Harness, tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    planned = go(harness, "plan", BAD, LOGS, out_dir=plans)
    assert planned.ok, {p: u.message for p, u in planned.units.items()}
    rules = {
        path: {(f["rule"], f["address"]) for f in json.loads(summary_path(plans, path).read_text())["policy"]}
        for path in (BAD, LOGS)
    }
    assert rules[LOGS] == set()  # the real module passes
    assert rules[BAD] == {
        ("s3-public-bucket", "aws_s3_bucket_acl.open"),
        ("unencrypted-storage", "aws_s3_bucket.open"),
        ("unencrypted-storage", "aws_ebs_volume.data"),
        ("sg-admin-port-open", "aws_security_group.ssh"),
        ("iam-star-on-star", "aws_iam_policy.admin"),
    }
    assert "**Policy: 5 finding(s), 5 deny**" in (plans / "summary.md").read_text()
    # the run report lists them too, each with what apply will do with it (the report's schema)
    assert planned.units[LOGS].policy == ()
    assert {(f["rule"], f["address"]) for f in planned.units[BAD].policy} == rules[BAD]
    assert {f["verdict"] for f in planned.units[BAD].policy} == {"denied"}
    check("report", json.loads(write_report(planned, tmp_path / "planned.json").read_text()))

    refused = go(harness, "apply", BAD, plan_dir=plans)
    assert refused.units[BAD].status == Status.FAILED and "apply refused" in refused.units[BAD].message
    assert len(refused.units[BAD].policy) == 5
    assert harness.state_keys("dev") == []  # nothing applied

    checking = settings_from_dict({"policy": {"check_apply": True}})
    settings = replace(harness.settings, policy=checking.policy)
    plain = go(harness, "apply", BAD, settings=settings)
    assert plain.units[BAD].status == Status.FAILED, plain.units[BAD].message
    assert "policy: 5 deny finding(s)" in plain.units[BAD].message
    events = read_events(find_ledger(harness.root, plain.run_id))
    assert [e["unit"] for e in events if e["event"] == "policy_denied"] == [BAD]
    assert harness.state_keys("dev") == [] and harness.locks("dev") == []


def test_a_plain_apply_under_check_apply_applies_the_plan_it_checked(
    tmp_path: Path, moto_server: Any
) -> None:
    from refarch import load_repo
    from tests.integration.test_terraform_engine import ECHO_UNIT, bucket_for, write_live

    h = Harness(tmp_path, moto_server.endpoint_url)
    h.make_backend("security")
    unit = "security/us-east-1/echo"
    write_live(h.root, {unit: ECHO_UNIT % "checked"})
    settings = replace(h.settings, policy=settings_from_dict({"policy": {"check_apply": True}}).policy)
    repo = load_repo(h.root, env=h.base_env, settings=settings, cache=False)
    report = run(
        make_plan(repo, "apply"),
        "apply",
        settings,
        engine=TerraformEngine(settings),
        base_env=h.base_env,
        options=RunOptions(history=False),
    )
    assert report.ok, report.units[unit].message
    body = h.client("s3", "security").get_object(
        Bucket=bucket_for("security"), Key=f"{unit}/terraform.tfstate"
    )
    assert json.loads(body["Body"].read())["outputs"]["greeting"]["value"] == "hello checked"
    assert list((h.root / ".refarch" / "checked").iterdir()) == []  # the checked plan is not kept
