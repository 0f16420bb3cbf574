"""Terragrunt's edges from its own Go tests, each on a fixture of
tests/fixtures/terragrunt_semantics (issue 19.5)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from refarch import load_repo, plan
from refarch.cli import cli
from refarch.config.stacks import generate_stacks
from refarch.errors import ConfigError, UsageError
from tests.unit.test_daily_loop import NoStateEngine
from tests.unit.test_ledger import go

SEMANTICS = Path(__file__).parent.parent / "fixtures" / "terragrunt_semantics"


@pytest.fixture
def copy(tmp_path):
    def make(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(SEMANTICS / name, target)
        return target

    return make


def test_mock_outputs_without_allowed_commands_serve_apply_when_there_is_no_state(copy):
    repo = load_repo(copy("mock-outputs-every-command"), cache=False)
    engine = NoStateEngine(empty={"vpc"})
    report = go(plan(repo, "apply", include=["app"]), engine)  # vpc: read, never applied
    assert report.exit_code == 0, report.units["app"].message
    app = next(j for j in engine.jobs if j.unit.path == "app")
    assert app.dependency_outputs == {"vpc": {"vpc_id": "vpc-mock"}}


def test_deep_merge_child_exclude_replaces_the_parents(copy):
    repo = load_repo(copy("deep-merge-exclude"), cache=False)
    exclude = repo.unit("app").exclude
    assert exclude is not None and exclude.actions == ("apply",)
    assert list(plan(repo, "plan").units) == ["app"]
    assert plan(repo, "apply").skipped == ("app",)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_no_stack_generate_with_an_empty_stack_folder_is_success_with_no_units(copy, how):
    live = copy("stack-no-generate") / "live"
    args, env = ["plan-all", str(live), "--non-interactive"], {}
    if how == "flag":
        args.append("--no-stack-generate")
    else:
        env["TG_NO_STACK_GENERATE"] = "true"
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "no unit selected" in result.stderr
    assert sorted(p.name for p in (live / ".terragrunt-stack").iterdir()) == [".gitkeep"]  # not generated


def test_a_stack_with_several_invalid_unit_paths_reports_all(copy):
    live = copy("stack-invalid-paths") / "live"
    with pytest.raises(ConfigError) as caught:
        generate_stacks(live)
    message = str(caught.value)
    assert "3 problems" in message
    for name in ("app1_empty_path", "app2_outside", "app3_absolute"):
        assert name in message
    assert "app4_fine" not in message
    assert not (live / ".terragrunt-stack").exists()


def test_a_no_validation_unit_whose_source_holds_a_stack_generates_it(copy):
    live = copy("stack-no-validation") / "live"
    result = generate_stacks(live)
    nested = ".terragrunt-stack/stack1/stack1/.terragrunt-stack/unit2/app1/code/terragrunt.hcl"
    assert (live / nested).is_file()
    assert (live / ".terragrunt-stack/unit1/app1/code/terragrunt.hcl").is_file()
    assert any(stack.endswith("stack1/stack1") for s in result.stacks for stack in s.stacks)
    units = set(load_repo(live, cache=False).units)
    assert units == {
        ".terragrunt-stack/unit1/app1/code",
        ".terragrunt-stack/stack1/stack1/.terragrunt-stack/unit2/app1/code",
    }


# -- stack clean / output / run ----------------------------------------------------------------
STACK_TREE = {
    "live/terragrunt.stack.hcl": (
        'unit "app" {\n  source = "../units/app"\n  path   = "app"\n}\n'
        'stack "nested" {\n  source = "../stacks/nested"\n  path   = "nested"\n}\n'
    ),
    # relative to where the nested stack file lands: live/.terragrunt-stack/nested
    "stacks/nested/terragrunt.stack.hcl": 'unit "db" {\n  source = "../../../units/db"\n  path = "db"\n}\n',
    "units/app/terragrunt.hcl": 'inputs = { name = "app" }\n',
    "units/db/terragrunt.hcl": 'inputs = { name = "db" }\n',
}


def test_stack_output_names_units_as_terragrunt_does_and_clean_removes_what_generate_made(tmp_path):
    from refarch.jobs.stacks import clean_stacks, lookup, stack_outputs
    from tests.helpers import write_tree

    root = write_tree(tmp_path, STACK_TREE)
    live = root / "live"
    generate_stacks(live)
    (root / "root.hcl").write_text("")  # the repo root: unit paths are relative to it
    by_path = {
        "live/.terragrunt-stack/app": {"id": "app-1"},
        "live/.terragrunt-stack/nested/.terragrunt-stack/db": {"endpoint": "db:5432"},
    }
    shown = stack_outputs(live, by_path)
    assert shown == {"app": {"id": "app-1"}, "nested": {"db": {"endpoint": "db:5432"}}}
    assert lookup(shown, "nested.db.endpoint") == "db:5432"
    with pytest.raises(UsageError, match=r"no output 'app\.nope'"):
        lookup(shown, "app.nope")
    result = CliRunner().invoke(cli, ["stack", "clean", str(root)])
    assert result.exit_code == 0, result.output
    assert f"Deleting stack directory: {live / '.terragrunt-stack'}" in result.stderr
    assert not (live / ".terragrunt-stack").exists()
    assert clean_stacks(root) == []


def test_stack_run_and_output_take_the_run_options():
    for verb in ("run", "output"):
        shown = CliRunner().invoke(cli, ["stack", verb, "--help"])
        assert shown.exit_code == 0 and "--no-stack-generate" in shown.output
    assert (
        "Usage: cli stack output [OPTIONS] DIRECTORY [KEY]"
        in CliRunner().invoke(cli, ["stack", "output", "--help"]).output
    )


def test_an_include_in_a_stack_file_is_refused_as_terragrunt_does(tmp_path):
    from tests.helpers import write_tree

    root = write_tree(
        tmp_path,
        {**STACK_TREE, "live/terragrunt.stack.hcl": 'include "root" {\n  path = "x.hcl"\n}\n'},
    )
    with pytest.raises(ConfigError, match="Terragrunt refuses them too") as caught:
        generate_stacks(root / "live")
    assert caught.value.line == 1
