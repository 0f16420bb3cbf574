"""A Terragrunt user's first try: the public examples' layouts read with placeholder or
environment account ids (tests/fixtures/first-try/README.md says what each fixture is)."""

import json
import shutil

import pytest
from click.testing import CliRunner

from refarch.cli import cli
from tests.conftest import FIXTURES

FIRST_TRY = FIXTURES / "first-try"
PLACEHOLDER = "aws_account_id 'replaceme' is not a 12-digit AWS account id"
LIVE_UNITS = [
    f"{account}/us-east-1/{env}/{unit}"
    for account, env in (("non-prod", "qa"), ("non-prod", "stage"), ("prod", "prod"))
    for unit in ("mysql", "webserver-cluster")
]


@pytest.fixture
def live(tmp_path):
    shutil.copytree(FIRST_TRY / "live", tmp_path / "live")
    return tmp_path / "live"


@pytest.fixture
def stacks(tmp_path, monkeypatch):
    shutil.copytree(FIRST_TRY / "live-stacks", tmp_path / "live-stacks")
    shutil.copytree(FIXTURES / "stacks" / "example" / "catalog", tmp_path / "catalog")
    monkeypatch.setenv("FIRST_TRY_NON_PROD_ACCOUNT_ID", "444444444444")
    monkeypatch.setenv("FIRST_TRY_PROD_ACCOUNT_ID", "555555555555")
    return tmp_path / "live-stacks"


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


def test_placeholder_account_ids_are_read_with_one_warning_each_by_commands_that_touch_no_aws(live):
    runner = CliRunner()
    graph = runner.invoke(cli, ["graph", str(live)])
    assert graph.exit_code == 0, graph.output
    units = json.loads(graph.stdout)["units"]
    assert sorted(u["path"] for u in units) == LIVE_UNITS
    assert all(u["dependencies"] == [] for u in units)  # the example's units stand alone
    said = warnings_of(graph.stderr)
    assert [w.split(": aws_account_id")[0] for w in said] == [
        "warning: non-prod/account.hcl:4",
        "warning: prod/account.hcl:4",
    ]
    assert all(PLACEHOLDER in w and "apply, destroy and bootstrap refuse" in w for w in said)
    for argv in (
        ["plan", str(live)],
        ["validate", str(live)],
        ["ci", "github", str(live), "--stdout", "--allow-local-ledger", "--install", "refarch==0.1.0"],
    ):
        result = runner.invoke(cli, argv)
        assert result.exit_code == 0, (argv, result.output)
        assert len(warnings_of(result.stderr)) == 2, argv  # once per file, not once per unit
    plan = runner.invoke(cli, ["plan", str(live)])
    assert "6 unit(s) in 1 group(s)" in plan.stdout and "after tier" not in plan.stdout


@pytest.mark.parametrize("verb", ["apply", "destroy"])
def test_commands_that_touch_aws_refuse_a_placeholder_account_id_as_before(live, verb):
    result = CliRunner().invoke(cli, [verb, str(live), "--non-interactive"])
    assert result.exit_code == 2
    assert f"error: non-prod/account.hcl:4: {PLACEHOLDER}" in result.stderr


def test_the_stacks_example_generates_both_stacks_and_plans_six_units_in_order(stacks):
    result = CliRunner().invoke(cli, ["plan", str(stacks), "--json"])
    assert result.exit_code == 0, result.output
    assert warnings_of(result.stderr) == []  # the ids come from the environment
    groups = json.loads(result.stdout)["groups"]
    order = [path.rsplit(".terragrunt-stack/", 1)[1] for group in groups for path in group]
    assert len(order) == 6
    for account in ("non-prod", "prod"):
        mine = [p for group in groups for p in group if p.startswith(f"{account}/")]
        names = [p.rsplit(".terragrunt-stack/", 1)[1] for p in mine]
        assert names == ["db", "roles/lambda-iam-role-to-dynamodb", "service"], names
    text = CliRunner().invoke(cli, ["plan", str(stacks)])
    assert text.exit_code == 0 and "after tier" not in text.stdout  # only tier 3 is in the repo
    graph = CliRunner().invoke(cli, ["graph", str(stacks)])
    edges = {u["path"]: u["dependencies"] for u in json.loads(graph.stdout)["units"]}
    service = "prod/us-east-1/orders/.terragrunt-stack/service"
    assert sorted(edges[service]) == [
        "prod/us-east-1/orders/.terragrunt-stack/db",
        "prod/us-east-1/orders/.terragrunt-stack/roles/lambda-iam-role-to-dynamodb",
    ]


def test_an_account_id_from_an_unset_variable_is_an_error_naming_it_as_terragrunt_does(stacks, monkeypatch):
    monkeypatch.delenv("FIRST_TRY_PROD_ACCOUNT_ID")
    result = CliRunner().invoke(cli, ["graph", str(stacks)])
    assert result.exit_code == 2
    assert "prod/account.hcl:4" in result.stderr and "FIRST_TRY_PROD_ACCOUNT_ID is not set" in result.stderr


def test_an_account_file_without_an_id_is_read_with_a_warning_and_apply_refuses(live):
    for account in ("non-prod", "prod"):
        (live / account / "account.hcl").write_text(f'locals {{\n  account_name = "{account}"\n}}\n')
    root = live / "root.hcl"
    root.write_text(root.read_text().replace("local.account.locals.aws_account_id", '""'))
    plan = CliRunner().invoke(cli, ["plan", str(live)])
    assert plan.exit_code == 0, plan.output
    assert [w.split(": no aws_account_id")[0] for w in warnings_of(plan.stderr)] == [
        "warning: non-prod/account.hcl:1",
        "warning: prod/account.hcl:1",
    ]
    apply = CliRunner().invoke(cli, ["apply", str(live), "--non-interactive"])
    assert apply.exit_code == 2 and "whose AWS account id is unknown" in apply.stderr
