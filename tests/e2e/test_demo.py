"""The README's main job, start to finish: `refarch demo` on its embedded AWS, run twice.

The first run (the CLI, as `make demo` runs it, with --keep) renders, bootstraps, builds the
AMI with the real Packer and applies every unit with the real Terraform 1.0.3; the saved
embedded AWS is then opened to check what the run left in each account. The second run (the
library) starts from that state: bootstrap changes nothing, the AMI is reused, every apply
reports no changes, and --destroy walks the reverse order.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from refarch.aws import AwsSessions, new_session
from refarch.cli import cli
from refarch.jobs.demo import ACCOUNTS, ORG, REGION, STATE_FILE, demo
from refarch.jobs.embedded_aws import EmbeddedAws
from refarch.settings import Settings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed"),
]

BASELINE = ["alarms", "guardduty", "cross-account-roles"]  # every account but security
APP = [
    *("vpc", "vpc-flow-logs", "ecs-cluster", "sample-app", "alb-public", "alb-internal", "aurora"),
    *("redis", "lambda-hello", "lambda-cleanup", "static-website", "aws-config", "route53-subzone"),
    *BASELINE,
]
UNITS = {
    "security": [
        *("iam-groups", "kms-admin", "cloudtrail", "alarms", "guardduty", "cross-account-access"),
        "aws-config-local",
    ],
    "shared-services": ["vpc", "vpc-flow-logs", "ecr", "openvpn", "route53", "aws-config-local", *BASELINE],
    "logs": ["log-archive", "aws-config", *BASELINE],
    "dev": APP,
    "prod": APP,
}
ALL_UNITS = {f"{account}/{REGION}/{kind}" for account, kinds in UNITS.items() for kind in kinds}


def _client(sessions: AwsSessions, service: str, account: str) -> Any:
    return sessions.client(service, ACCOUNTS[account], REGION, account_name=account)


def _check_embedded_aws(workdir: Path, ami_id: str) -> None:
    """Open the saved embedded AWS and check what the first run left in every account."""
    with EmbeddedAws() as aws:
        assert aws.restore(workdir / STATE_FILE, note=pytest.fail)
        settings = Settings(endpoint_url=aws.endpoint_url, region=REGION)
        sessions = AwsSessions(
            settings,
            base_session=new_session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION),
        )
        for account, kinds in UNITS.items():
            bucket = f"{ORG}-{account}-{REGION}-tf-state"
            s3 = _client(sessions, "s3", account)
            keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
            assert keys == {f"{account}/{REGION}/{kind}/terraform.tfstate" for kind in kinds}
            table = f"{ORG}-{account}-{REGION}-tf-locks"
            items = _client(sessions, "dynamodb", account).scan(TableName=table)["Items"]
            lock_ids = {item["LockID"]["S"] for item in items}
            # Terraform keeps one digest per state and releases every lock it took.
            assert lock_ids == {f"{bucket}/{key}-md5" for key in keys}
        state = json.loads(
            _client(sessions, "s3", "dev")
            .get_object(
                Bucket=f"{ORG}-dev-{REGION}-tf-state", Key=f"dev/{REGION}/sample-app/terraform.tfstate"
            )["Body"]
            .read()
        )
        assert state["outputs"]["service_id"]["value"].endswith(f":service/{ORG}-dev/sample-app")
        kms = json.loads(
            _client(sessions, "s3", "logs")
            .get_object(
                Bucket=f"{ORG}-logs-{REGION}-tf-state", Key=f"logs/{REGION}/log-archive/terraform.tfstate"
            )["Body"]
            .read()
        )
        assert kms["outputs"]["bucket_name"]["value"] == f"{ORG}-logs-archive-{ACCOUNTS['logs']}"
        ec2 = _client(sessions, "ec2", "shared-services")
        assert [i["ImageId"] for i in ec2.describe_images(ImageIds=[ami_id])["Images"]] == [ami_id]
        permissions = ec2.describe_image_attribute(ImageId=ami_id, Attribute="launchPermission")
        assert {p["UserId"] for p in permissions["LaunchPermissions"]} == {ACCOUNTS["dev"], ACCOUNTS["prod"]}


def test_demo_runs_the_main_job_and_a_second_kept_run_changes_nothing(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", str(workdir), "--keep"])
    assert result.exit_code == 0, result.output
    for stage in ("1. embedded AWS", "2. render", "3. bootstrap", "4. AMI", "5. apply"):
        assert stage in result.output
    assert "tier 3: dev, logs, prod" in result.output  # the plan
    assert "refarch demo: ok in" in result.output
    assert f"{len(ALL_UNITS)} of {len(ALL_UNITS)} succeeded" in result.output

    report = json.loads((workdir / "apply-report.json").read_text())
    assert report["status"] == "ok" and report["engine"] == "terraform"
    assert {u["path"] for u in report["units"] if u["status"] == "succeeded"} == ALL_UNITS
    assert Path(report["ledger"]).is_file()
    assert all(Path(u["log"]).is_file() for u in report["units"])
    record = json.loads((workdir / "live/.refarch/bootstrap.json").read_text())
    assert record["status"] == "done"
    kinds = {r["kind"] for a in record["accounts"].values() for r in a["results"]}
    assert {
        "s3-bucket",
        "dynamodb-table",
        "key-pair",
        "kms-admin",
        "password",
        "private-ca",
        "acm-certificate",
        "vpn-pki",
    } <= kinds
    ami_id = json.loads((workdir / "live/.refarch/amis.json").read_text())
    ami_id = ami_id["amis"]["ecs-node"][REGION]["ami_id"]
    assert f'"{REGION}" = "{ami_id}"' in (workdir / "live/amis.auto.hcl").read_text()
    _check_embedded_aws(workdir, ami_id)

    second = demo(workdir, keep=True, destroy=True)
    assert second.ok and second.resumed
    assert second.bootstrap_changes == 0
    assert (second.ami_id, second.ami_built) == (ami_id, False)
    assert set(second.unchanged) == ALL_UNITS
    assert second.destroy is not None and second.destroy.ok
    order = list(second.destroy.units)
    assert order.index(f"dev/{REGION}/sample-app") < order.index(f"dev/{REGION}/vpc")
    assert max(order.index(p) for p in ALL_UNITS if not p.startswith("security")) < min(
        order.index(p) for p in ALL_UNITS if p.startswith("security")
    )
