"""`refarch new` + `refarch validate` on rendered repos, with the real loader, planner and Terraform."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from refarch.cli import cli
from refarch.config import evaluate_unit
from refarch.engines.terraform import pinned_terraform_binary
from refarch.planner import plan
from refarch.render import FLAVOURS, render_live_repo
from refarch.repo import load_repo
from refarch.validate import validate_repo
from tests.conftest import ACCOUNTS as ALL_ACCOUNTS

pytestmark = pytest.mark.integration

# The suite's accounts without stage: five accounts, like the demo.
ACCOUNTS = {name: id_ for name, id_ in ALL_ACCOUNTS.items() if name != "stage"}
ACCOUNTS_ARG = ",".join(f"{k}={v}" for k, v in ACCOUNTS.items())
TERRAFORM = pinned_terraform_binary() or "terraform"  # the Terraform 1.0.3 the modules target


@pytest.fixture(scope="module", params=["aws", "demo"])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp(request.param) / "live"
    result = CliRunner().invoke(
        cli,
        [
            "new",
            str(target),
            "--org",
            "acme",
            "--accounts",
            ACCOUNTS_ARG,
            "--regions",
            "us-east-1,us-west-2",
            "--domain",
            "acme.com",
            "--flavour",
            request.param,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rendered 67 units" in result.output
    return target


def test_rendered_repo_loads_and_plans_in_tier_order(rendered: Path) -> None:
    repo = load_repo(rendered, cache=False)
    assert len(repo.units) == 67
    assert {a.name: a.id for a in repo.accounts} == ACCOUNTS
    assert {a.name: a.tier for a in repo.accounts} == {
        "security": 1,
        "shared-services": 2,
        "logs": 3,
        "dev": 3,
        "prod": 3,
    }
    unit = repo.unit("prod/us-west-2/sample-app")
    assert unit.account_id == "666666666666" and unit.region == "us-west-2"
    assert unit.dependencies == ("prod/us-west-2/ecs-cluster", "shared-services/us-east-1/ecr")
    assert unit.iam_role == "arn:aws:iam::666666666666:role/OrganizationAccountAccessRole"
    assert unit.remote_state is not None
    assert unit.remote_state.config["bucket"] == "acme-prod-us-west-2-tf-state"
    assert unit.remote_state.config["dynamodb_table"] == "acme-prod-us-west-2-tf-locks"
    assert unit.remote_state.config["key"] == "prod/us-west-2/sample-app/terraform.tfstate"
    assert unit.source == str(rendered.resolve() / "modules" / "ecs-service")
    assert unit.inputs["environment"] == {"APP_ENV": "prod", "APP_DOMAIN": "sample-app.prod.acme.com"}
    result = plan(repo)
    order = list(result.units)
    assert order.index("security/us-east-1/kms-admin") < order.index("logs/us-east-1/log-archive")
    assert [{result.units[p].account for p in tier} for tier in result.tiers] == [
        {"security"},
        {"shared-services"},
        {"logs", "dev", "prod"},
    ]
    cli_plan = CliRunner().invoke(cli, ["plan", str(rendered), "--json", "--no-cache"])
    assert cli_plan.exit_code == 0, cli_plan.output
    assert json.loads(cli_plan.output)["groups"][0] == [
        "security/us-east-1/alarms",
        "security/us-east-1/iam-groups",
    ]


def test_validate_is_clean_on_the_rendered_repo(rendered: Path) -> None:
    report = validate_repo(rendered)
    assert report.mismatches == ()
    assert len(report.checked) == 67 and report.remote == ()
    assert len(report.modules) == 21
    result = CliRunner().invoke(cli, ["validate", str(rendered)])
    assert result.exit_code == 0, result.output
    assert "67 unit(s) checked against 21 module(s), 0 mismatch(es)" in result.output


def test_validate_reports_every_mismatch_with_file_and_line(tmp_path: Path) -> None:
    target = tmp_path / "live"
    render_live_repo(target, org="acme", accounts=ACCOUNTS, regions=["us-east-1"])
    envcommon = target / "_envcommon" / "sample-app.hcl"
    text = envcommon.read_text()
    text = text.replace("outputs.cluster_arn", "outputs.cluster_id")  # not an output (nor a mock)
    text = text.replace('  service_name  = "sample-app"\n', "  service_nam = 1\n")
    envcommon.write_text(text)
    lines = text.splitlines()
    vpc = target / "dev" / "us-east-1" / "vpc" / "terragrunt.hcl"
    vpc.write_text(vpc.read_text().replace("cidr_block =", "cidr_blocks ="))

    report = validate_repo(target)
    found = {(m.path, m.line, m.detail, m.units) for m in report.mismatches}
    line_of = {
        needle: next(i for i, line in enumerate(lines, 1) if needle in line)
        for needle in ("service_nam =", "cluster_id")
    }
    apps = ("dev/us-east-1/sample-app", "prod/us-east-1/sample-app")
    vpc_inputs_line = vpc.read_text().splitlines().index("inputs = {") + 1
    assert found == {
        (
            "_envcommon/sample-app.hcl",
            line_of["service_nam ="],
            "input 'service_nam' is not a variable of module modules/ecs-service",
            apps,
        ),
        (
            "_envcommon/sample-app.hcl",
            line_of["cluster_id"],
            "dependency.cluster.outputs.cluster_id: module modules/ecs-cluster has no output 'cluster_id'",
            apps,
        ),
        (
            "dev/us-east-1/sample-app/terragrunt.hcl",
            1,
            "required variable 'service_name' of module modules/ecs-service is not set in inputs",
            ("dev/us-east-1/sample-app",),
        ),
        (
            "prod/us-east-1/sample-app/terragrunt.hcl",
            1,
            "required variable 'service_name' of module modules/ecs-service is not set in inputs",
            ("prod/us-east-1/sample-app",),
        ),
        (
            "dev/us-east-1/vpc/terragrunt.hcl",
            vpc_inputs_line + 1,
            "input 'cidr_blocks' is not a variable of module modules/vpc",
            ("dev/us-east-1/vpc",),
        ),
        (
            "dev/us-east-1/vpc/terragrunt.hcl",
            vpc_inputs_line,
            "required variable 'cidr_block' of module modules/vpc is not set in inputs",
            ("dev/us-east-1/vpc",),
        ),
    }
    result = CliRunner().invoke(cli, ["validate", str(target)])
    assert result.exit_code == 2
    assert f"_envcommon/sample-app.hcl:{line_of['cluster_id']}: dependency.cluster" in result.output
    assert "6 mismatch(es)" in result.output


def test_validate_reports_a_missing_module_and_skips_remote_sources(tmp_path: Path) -> None:
    target = tmp_path / "live"
    render_live_repo(
        target,
        org="acme",
        accounts=ACCOUNTS,
        regions=["us-east-1"],
        modules_source="git::git@github.com:acme/modules.git?ref=v1.0.0",
    )
    assert not (target / "modules").exists()
    report = validate_repo(target)
    assert (
        report.ok and report.checked == () and len(report.remote) == 50
    )  # no --domain: no route53 (nor subzones)
    shutil.rmtree(target)
    render_live_repo(target, org="acme", accounts=ACCOUNTS, regions=["us-east-1"])
    shutil.rmtree(target / "modules" / "vpc")
    details = {m.detail for m in validate_repo(target).mismatches}
    assert any("modules/vpc" in d and "no .tf files" in d for d in details), details


def test_new_refuses_a_non_empty_folder_and_bad_ids(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    runner = CliRunner()
    base = ["--org", "acme", "--regions", "us-east-1"]
    result = runner.invoke(cli, ["new", str(tmp_path / "taken"), *base, "--accounts", ACCOUNTS_ARG])
    assert result.exit_code == 2 and "not empty" in result.output
    result = runner.invoke(
        cli,
        ["new", str(tmp_path / "fresh"), *base, "--accounts", "security=1234,shared-services=222222222222"],
    )
    assert result.exit_code == 2 and "'1234' is not an AWS account ID" in result.output
    result = runner.invoke(cli, ["new", str(tmp_path / "fresh"), *base, "--accounts", "security"])
    assert result.exit_code == 2 and "is not NAME=ID" in result.output
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("folder", ["modules", "modules-demo"])
def test_modules_are_terraform_fmt_clean(folder: str) -> None:
    result = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", str(FLAVOURS["aws"].parent / folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _apply(module: Path, work: Path, inputs: dict[str, Any]) -> dict[str, Any]:
    """terraform init + apply + output of one module with local state; its outputs."""
    shutil.copytree(module, work)
    (work / "terraform.tfvars.json").write_text(json.dumps(inputs))
    env = {**os.environ, "TF_VAR_master_password": "demo-password-1"}  # as `refarch apply` passes it
    for argv in (
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color"],
    ):
        done = subprocess.run(
            [TERRAFORM, *argv], cwd=work, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{work}: {done.stdout}{done.stderr}"
    out = subprocess.run([TERRAFORM, "output", "-json"], cwd=work, capture_output=True, text=True, check=True)
    return {name: value["value"] for name, value in json.loads(out.stdout).items()}


def test_demo_flavour_applies_offline_with_outputs_flowing_across_accounts(
    tmp_path: Path,
) -> None:
    """The demo's promise, without S3: every unit applies with the real Terraform 1.0.3 and
    its dependencies' real outputs (mocks are not allowed for apply)."""
    target = tmp_path / "live"
    accounts = {k: ACCOUNTS[k] for k in ("security", "shared-services", "logs", "dev")}
    render_live_repo(
        target, org="acme", accounts=accounts, regions=["us-east-1"], domain="acme.com", flavour="demo"
    )
    repo = load_repo(target, cache=False)
    result = plan(repo)
    outputs: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for group in result.groups:
            jobs = {}
            for path in group:
                unit = repo.unit(path)
                deps = {d.name: outputs[d.path] for d in unit.dependency_blocks}
                evaluated = evaluate_unit(repo, path, outputs=deps, terraform_command="apply")
                assert evaluated.source is not None
                jobs[path] = pool.submit(
                    _apply, Path(evaluated.source), tmp_path / "work" / path, dict(evaluated.inputs)
                )
            outputs.update({path: job.result() for path, job in jobs.items()})
    assert len(outputs) == 37
    key_arn = outputs["security/us-east-1/kms-admin"]["key_arn"]
    assert key_arn.startswith("arn:aws:kms:demo:111111111111:key/")
    assert outputs["logs/us-east-1/log-archive"]["bucket_name"] == "acme-logs-archive-333333333333"
    assert outputs["security/us-east-1/cloudtrail"]["trail_arn"].endswith(":trail/acme-security-trail")
    vpc = outputs["dev/us-east-1/vpc"]
    assert vpc["vpc_cidr_block"] == "10.3.0.0/16" and len(vpc["private_subnet_ids"]) == 2
    service = outputs["dev/us-east-1/sample-app"]
    assert service["service_id"].endswith(":service/acme-dev/sample-app")
    assert outputs["dev/us-east-1/aurora"]["endpoint"].startswith("acme-dev-db.cluster-")
    assert outputs["security/us-east-1/cross-account-access"]["group_policy_groups"] == [
        "acme-full-access",
        "acme-read-only",
    ]
    # The load balancers' records go into the app account's own zone, delegated from shared-services'.
    assert outputs["dev/us-east-1/route53-subzone"]["domain_name"] == "dev.acme.com"
    assert outputs["dev/us-east-1/alb-public"]["fqdn"] == "us-east-1.dev.acme.com"
    assert outputs["dev/us-east-1/alb-internal"]["fqdn"] == "us-east-1.internal.dev.acme.com"
    assert (
        outputs["security/us-east-1/aws-config-local"]["bucket_name"] == "acme-security-config-111111111111"
    )
