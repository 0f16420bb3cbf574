"""`--changed-since REF`: units whose files, or anything they read, changed in a real git
repository (in tmp_path), plus their dependents; deleted units reported, never destroyed."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import refarch
from refarch.changes import FileChange, changed_units, changes_since
from refarch.cli import cli
from refarch.errors import UsageError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "live"
DEV_APP = "dev/us-east-1/app"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd, *args):
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def world(tmp_path):
    """A git repository: the fixture live repo in live/, a local module in modules/app that
    dev's app unit uses, one commit tagged `base`."""
    top = tmp_path / "repo"
    live = top / "live"
    shutil.copytree(FIXTURE, live, ignore=shutil.ignore_patterns(".refarch"))
    (top / "modules" / "app").mkdir(parents=True)
    (top / "modules" / "app" / "main.tf").write_text('variable "desired_count" {}\n')
    unit = live / DEV_APP / "terragrunt.hcl"
    unit.write_text(unit.read_text() + '\nterraform {\n  source = "../../../../modules//app"\n}\n')
    (top / ".gitignore").write_text(".refarch/\n")
    git(top, "init", "-q", "-b", "main")
    git(top, "add", "-A")
    git(top, "commit", "-qm", "base")
    git(top, "tag", "base")
    return top, live


def change(live, rel, text=None, append="\n# changed\n"):
    path = live / rel
    path.write_text(text if text is not None else path.read_text() + append)


def since_base(live):
    return changes_since(refarch.load_repo(live, cache=False), "base")


def test_nothing_changed_selects_nothing(world):
    _, live = world
    result = since_base(live)
    assert result.selected == () and result.deleted == () and result.files == ()


def test_a_unit_file_selects_the_unit_and_its_dependents(world):
    top, live = world
    change(live, "dev/us-east-1/vpc/terragrunt.hcl")
    git(top, "commit", "-qam", "vpc")
    result = since_base(live)
    assert result.changed == ("dev/us-east-1/vpc",)
    assert result.dependents == (DEV_APP, "dev/us-east-1/mysql")
    assert result.reasons["dev/us-east-1/vpc"] == ("dev/us-east-1/vpc/terragrunt.hcl",)


def test_included_and_read_files_select_every_unit_that_read_them(world):
    _, live = world
    change(live, "_envcommon/mysql.hcl")  # included (uncommitted: the working tree counts)
    change(live, "stage/account.hcl")  # read_terragrunt_config target of root.hcl
    result = since_base(live)
    mysql = {f"{a}/us-east-1/mysql" for a in ("dev", "prod", "stage")}
    stage = {"stage/us-east-1/app", "stage/us-east-1/mysql", "stage/us-east-1/vpc"}
    assert set(result.changed) == mysql | stage
    assert set(result.dependents) == {DEV_APP, "prod/us-east-1/app"}


def test_a_local_module_source_selects_the_units_using_it(world):
    top, live = world
    (top / "modules" / "app" / "outputs.tf").write_text('output "id" { value = "x" }\n')  # untracked
    result = since_base(live)
    assert result.changed == (DEV_APP,)
    assert result.reasons[DEV_APP] == ("../modules/app/outputs.tf",)


def test_refarch_toml_selects_every_unit_and_a_new_parent_config_its_folder(world):
    _, live = world
    change(live, "refarch.toml", text='tiers = [["security"], ["shared-services"], ["*"]]\n')
    result = since_base(live)
    repo = refarch.load_repo(live, cache=False)
    assert set(result.changed) == set(repo.units)
    (live / "refarch.toml").unlink()
    change(live, "prod/us-east-1/common.hcl", text="locals {}\n")  # find_in_parent_folders may now find it
    result = since_base(live)
    assert set(result.changed) == {p for p in repo.units if p.startswith("prod/us-east-1/")}


def test_a_deleted_unit_is_reported_for_a_destroy_and_never_run(world):
    top, live = world
    git(top, "rm", "-rq", "live/stage/us-east-1/app")
    git(top, "commit", "-qm", "remove stage app")
    result = since_base(live)
    assert result.deleted == ("stage/us-east-1/app",)
    assert result.selected == ()
    runner = CliRunner()
    applied = runner.invoke(cli, ["apply", str(live), "--changed-since", "base", "--non-interactive"])
    assert applied.exit_code == 0, applied.output
    assert "[stage/us-east-1/app] deleted: needs a destroy" in applied.output
    assert "nothing changed since base: no unit to run" in applied.output
    assert not (live / ".refarch" / "runs").exists()  # nothing ran, nothing destroyed
    summary = top / "summary.md"
    env = {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    on_github = runner.invoke(cli, ["plan-all", str(live), "--changed-since", "base"], env=env)
    assert on_github.exit_code == 0, on_github.output
    assert "::warning title=refarch::stage/us-east-1/app was deleted since base" in on_github.output
    assert summary.read_text() == "refarch: nothing changed since base: no unit to run\n"


def test_plan_and_graph_accept_changed_since(world):
    top, live = world
    change(live, "dev/us-east-1/mysql/terragrunt.hcl")
    git(top, "commit", "-qam", "mysql")
    runner = CliRunner()
    planned = runner.invoke(cli, ["plan", str(live), "--changed-since", "base", "--json"])
    assert planned.exit_code == 0, planned.output
    plan_json = json.loads(planned.stdout)
    assert plan_json["groups"] == [["dev/us-east-1/mysql"], [DEV_APP]]  # dependencies assumed
    graphed = runner.invoke(cli, ["graph", str(live), "--changed-since", "base"])
    assert graphed.exit_code == 0, graphed.output
    units = json.loads(graphed.stdout)["units"]
    assert [(u["path"], u["dependencies"]) for u in units] == [
        (DEV_APP, ["dev/us-east-1/mysql"]),
        ("dev/us-east-1/mysql", []),
    ]
    from refarch.jobs.changed import changed_selection
    from refarch.runner.run import load_plan

    # what refarch.deploy (and so `refarch apply --changed-since base`) narrows the run to
    _, include, exclude = changed_selection(refarch.load_repo(live, cache=False), "base")
    run_plan = load_plan(live, "apply", include=include, exclude=exclude, ignore_dependencies=True)
    assert list(run_plan.units) == ["dev/us-east-1/mysql", DEV_APP]
    assert "dev/us-east-1/vpc" in run_plan.assumed  # applied before: its outputs come from state
    ci_flags = ["--install", "ci/refarch-0.1.0-py3-none-any.whl", "--install-sha256", "a" * 64]
    ci_flags.append("--allow-local-ledger")
    emitted = runner.invoke(
        cli, ["ci", "github", str(live), "--changed-since", "base", "--stdout", *ci_flags]
    )
    assert emitted.exit_code == 0, emitted.output
    # app depends on mysql: two dependency steps, app's planned after mysql's apply
    assert "--include dev/us-east-1/mysql --ignore-dependencies" in emitted.stdout
    assert "--include dev/us-east-1/app --ignore-dependencies" in emitted.stdout
    assert "apply-security" not in emitted.stdout


def test_an_unknown_ref_is_a_usage_error(world):
    _, live = world
    with pytest.raises(UsageError, match="--changed-since nope"):
        changes_since(refarch.load_repo(live, cache=False), "nope")
    result = CliRunner().invoke(cli, ["plan", str(live), "--changed-since", "nope"])
    assert result.exit_code == 2


def test_changed_units_is_pure_and_skips_tool_folders():
    repo = refarch.load_repo(FIXTURE, cache=False)
    files = [
        FileChange("A", "dev/us-east-1/vpc/.terragrunt-cache/x/main.tf"),
        FileChange("M", ".refarch/bootstrap.json"),
        FileChange("M", "README.md"),
    ]
    assert changed_units(repo, files).selected == ()
