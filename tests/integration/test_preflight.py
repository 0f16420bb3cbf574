"""`refarch preflight` on the moto server: render -> bootstrap -> preflight is clean; a key pair
deleted (or renamed in bootstrap.hcl only) is named with its unit, input, account, region and
the command that makes it; apply refuses to start while something is missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from refarch.aws import AwsSessions
from refarch.cli import cli
from refarch.config import load_repo
from refarch.jobs.bootstrap import bootstrap
from refarch.jobs.preflight import MISSING, NOT_CHECKED, PreflightReport, preflight
from refarch.models import Repo
from refarch.planner import plan
from refarch.render import render_live_repo
from refarch.settings import Settings, load_settings
from tests.conftest import ACCOUNTS, MotoServer
from tests.unit.test_contracts import check as check_contract

pytestmark = pytest.mark.integration

RENDERED = {name: ACCOUNTS[name] for name in ("security", "shared-services", "dev")}


def load(root: Path, endpoint_url: str) -> tuple[Repo, Settings]:
    settings = load_settings(root, {"AWS_ENDPOINT_URL": endpoint_url})
    return load_repo(root, settings=settings, cache=False), settings


def check(root: Path, endpoint_url: str) -> PreflightReport:
    repo, settings = load(root, endpoint_url)
    return preflight(plan(repo, "apply"), settings, sessions=AwsSessions(settings), env={})


def make_ami(sessions: AwsSessions, name: str, share_with: list[str]) -> str:
    """An image owned by shared-services (made from one of moto's own), shared as asked."""
    ec2 = sessions.client("ec2", ACCOUNTS["shared-services"], "us-east-1", account_name="shared-services")
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = str(ec2.create_image(InstanceId=instance, Name=name)["ImageId"])
    if share_with:
        ec2.modify_image_attribute(
            ImageId=image, LaunchPermission={"Add": [{"UserId": ACCOUNTS[a]} for a in share_with]}
        )
    return image


@pytest.fixture
def world(tmp_path: Path, moto_server: MotoServer) -> Any:
    """A rendered repo, bootstrapped, with both AMIs built in shared-services and recorded."""
    root = tmp_path / "live"
    render_live_repo(root, org="acme", accounts=RENDERED, regions=["us-east-1"], flavour="demo")
    repo, settings = load(root, moto_server.endpoint_url)
    sessions = AwsSessions(settings)
    # What the units reference (state backends are not inputs: left out to keep the test short).
    assert bootstrap(repo, settings, sessions=sessions, only=["kms", "keypairs"]).status == "done"
    node = make_ami(sessions, "ecs-node", ["dev"])
    vpn = make_ami(sessions, "openvpn", [])
    (root / "amis.auto.hcl").write_text(
        f'locals {{\n  ami_ids = {{\n    ecs-node = {{ "us-east-1" = "{node}" }}\n'
        f'    openvpn = {{ "us-east-1" = "{vpn}" }}\n  }}\n}}\n',
        encoding="utf-8",
    )
    return root, sessions, node


def test_render_bootstrap_preflight_is_clean(world: Any, moto_server: MotoServer) -> None:
    root, _, _ = world
    report = check(root, moto_server.endpoint_url)
    assert report.ok, [f.to_json() for f in report.missing]
    found = {(f.reference.unit, f.reference.input): f for f in report.having("found")}
    assert set(found) == {
        ("dev/us-east-1/ecs-cluster", "ami_id"),
        ("dev/us-east-1/ecs-cluster", "keypair_name"),
        ("shared-services/us-east-1/openvpn", "ami_id"),
        ("shared-services/us-east-1/openvpn", "keypair_name"),
        ("security/us-east-1/kms-admin", "cmk_administrator_iam_arns[0]"),
    }
    assert found[("dev/us-east-1/ecs-cluster", "ami_id")].note == "shared by shared-services"
    # What waits for a dependency is listed, never looked up from its mock outputs.
    unknown = {(f.reference.unit, f.reference.input) for f in report.having(NOT_CHECKED)}
    assert ("security/us-east-1/cloudtrail", "kms_key_arn") in unknown
    assert ("security/us-east-1/kms-admin", "cmk_user_iam_arns") in unknown


def test_a_deleted_key_pair_is_named_and_apply_does_not_start(world: Any, moto_server: MotoServer) -> None:
    root, sessions, _ = world
    ec2 = sessions.client("ec2", ACCOUNTS["dev"], "us-east-1", account_name="dev")
    ec2.delete_key_pair(KeyName="acme-default")
    report = check(root, moto_server.endpoint_url)
    [missing] = report.missing
    ref = missing.reference
    assert (ref.unit, ref.input, ref.kind, ref.value) == (
        "dev/us-east-1/ecs-cluster",
        "keypair_name",
        "key-pair",
        "acme-default",
    )
    assert (ref.account, ref.account_id, ref.region) == ("dev", ACCOUNTS["dev"], "us-east-1")
    assert missing.remedy == f"refarch bootstrap {root} --accounts dev --only keypairs"

    runner = CliRunner()
    result = runner.invoke(cli, ["preflight", str(root), "--endpoint-url", moto_server.endpoint_url])
    assert result.exit_code == 2, result.output
    assert "missing     dev/us-east-1/ecs-cluster: keypair_name = acme-default" in result.output
    assert "--only keypairs" in result.output
    as_json = runner.invoke(
        cli, ["preflight", str(root), "--endpoint-url", moto_server.endpoint_url, "--json"]
    )
    assert as_json.exit_code == 2
    check_contract("preflight", json.loads(as_json.output))  # schemas/preflight.schema.json
    findings = json.loads(as_json.output)["findings"]
    assert [f["value"] for f in findings if f["status"] == "missing"] == ["acme-default"]
    applied = runner.invoke(
        cli, ["apply", str(root), "--endpoint-url", moto_server.endpoint_url, "--non-interactive"]
    )
    assert applied.exit_code == 2
    assert "apply not started" in applied.output

    # The remedy it names makes preflight clean again.
    repo, settings = load(root, moto_server.endpoint_url)
    bootstrap(repo, settings, sessions=sessions, accounts=["dev"], only=["keypairs"])
    assert check(root, moto_server.endpoint_url).ok


def test_a_rename_in_bootstrap_hcl_only_is_caught_before_apply(world: Any, moto_server: MotoServer) -> None:
    root, _, _ = world
    hcl = root / "bootstrap.hcl"
    hcl.write_text(hcl.read_text(encoding="utf-8").replace('"acme-openvpn"', '"acme-vpn"'), encoding="utf-8")
    report = check(root, moto_server.endpoint_url)
    assert [(f.reference.unit, f.reference.value, f.remedy) for f in report.missing] == [
        (
            "shared-services/us-east-1/openvpn",
            "acme-vpn",
            f"refarch bootstrap {root} --accounts shared-services --only keypairs",
        )
    ]


def test_an_ami_not_shared_with_the_account_is_missing(world: Any, moto_server: MotoServer) -> None:
    root, sessions, node = world
    ec2 = sessions.client("ec2", ACCOUNTS["shared-services"], "us-east-1", account_name="shared-services")
    ec2.modify_image_attribute(ImageId=node, LaunchPermission={"Remove": [{"UserId": ACCOUNTS["dev"]}]})
    report = check(root, moto_server.endpoint_url)
    [missing] = report.missing
    assert (missing.reference.unit, missing.reference.input, missing.status) == (
        "dev/us-east-1/ecs-cluster",
        "ami_id",
        MISSING,
    )
    assert "not shared with dev" in missing.note
    assert missing.remedy == f"refarch amis build {root} --regions us-east-1 --share-with dev"  # DIR first
