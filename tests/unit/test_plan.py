"""Ordering: tiers, dependencies, filters, destroy, and the JSON contracts."""

import json

import pytest
from click.testing import CliRunner

from refarch import load_repo, plan
from refarch.cli import cli
from refarch.errors import UsageError


@pytest.fixture(scope="module")
def repo(live_repo_module):
    return live_repo_module


@pytest.fixture(scope="module")
def live_repo_module():
    from tests.conftest import FIXTURES

    return load_repo(FIXTURES / "live", cache=False)


def position(p):
    return {path: i for i, group in enumerate(p.groups) for path in group}


def test_tiers_then_dependencies(repo):
    p = plan(repo)
    pos = position(p)
    for path, unit in repo.units.items():
        if path in p.skipped:
            continue
        for dep in unit.dependencies:
            assert pos[dep] < pos[path]
        for other, other_unit in repo.units.items():
            if other in pos and other_unit.tier < unit.tier:
                assert pos[other] < pos[path]
    assert p.skipped == ("prod/us-east-1/legacy",)
    assert "prod/us-east-1/legacy" not in pos


def test_destroy_is_the_exact_reverse(repo):
    apply, destroy = plan(repo), plan(repo, "destroy")
    # kms-admin has prevent_destroy: it and what it depends on (iam) stay, as in Terragrunt.
    protected = {"security/us-east-1/kms-admin", "security/us-east-1/iam"}
    expected = [sorted(set(g) - protected) for g in reversed(apply.groups)]
    assert [sorted(g) for g in destroy.groups] == [g for g in expected if g]
    assert destroy.units["dev/us-east-1/vpc"].waits_for == ("dev/us-east-1/app", "dev/us-east-1/mysql")


def test_ready_after_includes_the_previous_tier(repo):
    p = plan(repo)
    ready = set(p.ready_after("dev/us-east-1/vpc"))
    assert ready == {"shared-services/us-east-1/ecr", "shared-services/us-east-1/vpc"}


def test_a_selection_is_what_runs_its_dependencies_are_read(repo):
    alone = plan(repo, include=["dev/us-east-1/app"])
    assert list(alone.units) == ["dev/us-east-1/app"]
    assert {"dev/us-east-1/mysql", "dev/us-east-1/vpc", "shared-services/us-east-1/ecr"} <= set(alone.assumed)
    assert alone.units["dev/us-east-1/app"].assumed
    pulled = plan(repo, include=["dev/us-east-1/app"], with_dependencies=True)
    assert set(pulled.units) == {
        "dev/us-east-1/app",
        "dev/us-east-1/mysql",
        "dev/us-east-1/vpc",
        "shared-services/us-east-1/ecr",
        "security/us-east-1/iam",
    }
    # Terragrunt's --queue-include-external says the same; --queue-strict-include refuses it
    assert set(plan(repo, include=["dev/us-east-1/app"], queue_include_external=True).units) == set(
        pulled.units
    )
    strict = plan(repo, include=["dev/us-east-1/app"], with_dependencies=True, ignore_dependencies=True)
    assert list(strict.units) == ["dev/us-east-1/app"]


def test_a_folder_is_a_selection_its_outside_dependencies_are_external(repo):
    dev = load_repo(repo.root / "dev", cache=False)
    assert dev.units["shared-services/us-east-1/ecr"].external
    p = plan(dev)
    assert all(path.startswith("dev/") for path in p.units)
    assert "shared-services/us-east-1/ecr" in p.external
    assert "shared-services/us-east-1/ecr" in plan(dev, with_dependencies=True).units


def test_exclude_and_glob_patterns(repo):
    p = plan(repo, include=["prod/*"], exclude=["prod/us-west-2"])
    assert "prod/us-west-2/vpc" not in p.units
    assert "prod/us-east-1/app" in p.units
    nothing = plan(repo, include=["nothing/*"])  # Terragrunt: a warning, nothing to run, success
    assert not nothing.units and not nothing.groups
    assert nothing.warnings == ("--include nothing/* matches no unit: nothing to apply",)
    with pytest.raises(UsageError, match="unknown action"):
        plan(repo, "frobnicate")


def test_cli_json_contracts(live_repo):
    runner = CliRunner()
    graph = runner.invoke(cli, ["graph", str(live_repo), "--format", "json", "--no-cache"])
    assert graph.exit_code == 0, graph.output
    units = {u["path"]: u for u in json.loads(graph.output)["units"]}
    app = units["dev/us-east-1/app"]
    assert set(app) == {
        "path",
        "account",
        "account_id",
        "region",
        "tier",
        "skip",
        "external",
        "dependencies",
        "source",
        "remote_state",
    }
    assert app["tier"] == 3 and app["account_id"] == "444444444444"
    planned = runner.invoke(cli, ["plan", str(live_repo), "--json", "--no-cache"])
    assert planned.exit_code == 0
    data = json.loads(planned.output)
    assert data["skipped"] == ["prod/us-east-1/legacy"]
    assert data["groups"][0] == ["security/us-east-1/iam"]


def test_cli_errors_exit_2_without_traceback(tmp_path):
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "terragrunt.hcl").write_text("locals {\n  x = \n}\n")
    result = CliRunner().invoke(cli, ["plan", str(tmp_path), "--no-cache"])
    assert result.exit_code == 2
    assert "u/terragrunt.hcl:2" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("fmt", ["dot", "mermaid"])
def test_graph_text_formats_name_every_edge(live_repo, fmt):
    result = CliRunner().invoke(cli, ["graph", str(live_repo), "--format", fmt, "--no-cache"])
    assert result.exit_code == 0
    assert result.output.count("->") >= 15
