"""One source of truth between the live repo and bootstrap, brownfield safety, `--only`, and
a dry run that lists exactly what the real run then does — on the moto server."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from refarch.aws import AwsSessions
from refarch.cli import cli
from refarch.config import load_repo
from refarch.jobs.bootstrap import bootstrap
from refarch.models import Repo
from refarch.render import render_live_repo
from refarch.settings import Settings, load_settings
from tests.conftest import ACCOUNTS, FIXTURES, MotoServer

pytestmark = pytest.mark.integration

RENDERED = {name: ACCOUNTS[name] for name in ("security", "shared-services", "dev")}
EXTRA = """
[certificates]
internal = ["app.acme.internal"]
accounts = ["dev"]

[secrets]
passwords = ["db_password"]
accounts = ["dev"]
"""


def rendered(root: Path, endpoint_url: str, extra: str = "") -> tuple[Repo, Settings]:
    render_live_repo(root, org="acme", accounts=RENDERED, regions=["us-east-1"], flavour="demo")
    if extra:
        with (root / "refarch.toml").open("a", encoding="utf-8") as toml:
            toml.write(extra)
    return reload(root, endpoint_url)


def reload(root: Path, endpoint_url: str) -> tuple[Repo, Settings]:
    settings = load_settings(root, {"AWS_ENDPOINT_URL": endpoint_url})
    return load_repo(root, settings=settings, cache=False), settings


def key_pairs(sessions: AwsSessions, account: str) -> list[str]:
    ec2 = sessions.client("ec2", ACCOUNTS[account], "us-east-1", account_name=account)
    return sorted(p["KeyName"] for p in ec2.describe_key_pairs()["KeyPairs"])


def users(sessions: AwsSessions, account: str) -> list[str]:
    iam = sessions.client("iam", ACCOUNTS[account], account_name=account)
    return sorted(u["UserName"] for u in iam.list_users()["Users"])


def referenced(repo: Repo, name: str) -> dict[str, Any]:
    return {path: unit.inputs[name] for path, unit in repo.units.items() if name in unit.inputs}


def test_a_rename_in_bootstrap_hcl_renames_it_for_bootstrap_and_every_unit(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    root = tmp_path / "live"
    rendered(root, moto_server.endpoint_url)
    hcl = root / "bootstrap.hcl"
    text = hcl.read_text(encoding="utf-8")
    hcl.write_text(
        text.replace('default = "acme-default"', 'default = "acme-workers"').replace(
            '"acme-kms-admin"', '"key-keeper"'
        ),
        encoding="utf-8",
    )
    repo, settings = reload(root, moto_server.endpoint_url)
    sessions = AwsSessions(settings)
    record = bootstrap(repo, settings, sessions=sessions)

    assert record.status == "done"
    for account in RENDERED:
        assert key_pairs(sessions, account) == ["acme-openvpn", "acme-workers"]
    assert users(sessions, "security") == ["key-keeper"]
    assert users(sessions, "dev") == []
    # Every unit names exactly what bootstrap made.
    assert referenced(repo, "keypair_name") == {
        "dev/us-east-1/ecs-cluster": "acme-workers",
        "shared-services/us-east-1/openvpn": "acme-openvpn",
    }
    admin = f"arn:aws:iam::{ACCOUNTS['security']}:user/key-keeper"
    assert referenced(repo, "cmk_administrator_iam_arns") == {"security/us-east-1/kms-admin": [admin]}
    assert record.outputs["cmk_administrator_iam_arns"] == [admin]


def test_a_repo_that_names_no_key_pairs_or_kms_admin_gets_none(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    root = tmp_path / "live"
    shutil.copytree(FIXTURES / "live", root)  # no bootstrap.hcl, no refarch.toml
    repo, settings = reload(root, moto_server.endpoint_url)
    sessions = AwsSessions(settings)
    planned = bootstrap(repo, settings, sessions=sessions, dry_run=True, accounts=["security", "dev"])
    assert {r.kind for r in planned.results} == {"s3-bucket", "dynamodb-table"}
    record = bootstrap(repo, settings, sessions=sessions, accounts=["security", "dev"])
    assert record.status == "done"
    assert Counter(record.changes) == Counter(planned.changes)
    assert key_pairs(sessions, "dev") == [] and users(sessions, "security") == []
    assert record.outputs.get("cmk_administrator_iam_arns", []) == []


def test_dry_run_lists_exactly_what_the_real_run_makes(tmp_path: Path, moto_server: MotoServer) -> None:
    repo, settings = rendered(tmp_path / "live", moto_server.endpoint_url, EXTRA)
    sessions = AwsSessions(settings)
    planned = bootstrap(repo, settings, sessions=sessions, dry_run=True)
    made = bootstrap(repo, settings, sessions=sessions)
    assert planned.changes  # key pairs, KMS admin, backend, passwords, CA and certificates
    kinds = {r.kind for r in made.results if r.changes}
    assert kinds >= {"key-material", "key-pair", "kms-admin", "s3-bucket", "password", "certificate"}
    assert Counter(planned.changes) == Counter(made.changes)
    assert len(planned.changes) == len(made.changes)
    again = bootstrap(repo, settings, sessions=sessions, dry_run=True)
    assert again.changes == []


def test_only_limits_the_run_to_the_named_provisioners(tmp_path: Path, moto_server: MotoServer) -> None:
    repo, settings = rendered(tmp_path / "live", moto_server.endpoint_url)
    sessions = AwsSessions(settings)
    record = bootstrap(repo, settings, sessions=sessions, only=["keypairs"], accounts=["dev"])
    assert {r.kind for r in record.results} == {"key-material", "key-pair"}
    assert key_pairs(sessions, "dev") == ["acme-default", "acme-openvpn"]
    s3 = sessions.client("s3", ACCOUNTS["dev"], account_name="dev")
    assert s3.list_buckets()["Buckets"] == []

    runner = CliRunner()
    argv = ["bootstrap", str(repo.root), "--endpoint-url", moto_server.endpoint_url, "--dry-run"]
    result = runner.invoke(cli, [*argv, "--only", "backend,kms", "--accounts", "security"])
    assert result.exit_code == 0, result.output
    assert "create bucket acme-security-us-east-1-tf-state" in result.output
    assert "create IAM user acme-kms-admin" in result.output
    assert "key pair" not in result.output
    wrong = runner.invoke(cli, [*argv, "--only", "backend,dragons"])
    assert wrong.exit_code == 2
    assert "dragons" in wrong.output and "keypairs" in wrong.output

    # A later --only run keeps what the record knows of the other provisioners.
    full = bootstrap(repo, settings, sessions=sessions, accounts=["security"])
    admin = full.outputs["cmk_administrator_iam_arns"]
    assert admin == [f"arn:aws:iam::{ACCOUNTS['security']}:user/acme-kms-admin"]
    again = bootstrap(repo, settings, sessions=sessions, only=["backend"], accounts=["security"])
    assert again.nothing_to_do and again.outputs["cmk_administrator_iam_arns"] == admin
    assert {r.kind for r in again.accounts["security"].results} >= {"kms-admin", "s3-bucket", "key-pair"}
