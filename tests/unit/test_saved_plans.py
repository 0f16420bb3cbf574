"""Saved plans without Terraform: the counts of a plan document, the summaries and markdown,
the stale checks, and the terragrunt engine's argv through the stand-in (both dialects)."""

import json
import stat
import zipfile
from pathlib import Path

import pytest

from refarch import load_repo, plan
from refarch.engines.plan_file import PlanChanges, changes_of, prior_state
from refarch.engines.terragrunt import TerragruntEngine
from refarch.errors import StalePlan, UsageError
from refarch.models import RunReport, Status, Unit, UnitReport
from refarch.runner.run import RunOptions, run
from refarch.runner.saved_plans import (
    NOTHING_TO_APPLY,
    SCHEMA_VERSION,
    changed_files,
    markdown,
    module_files,
    plan_path,
    run_summary,
    stale_outputs,
    stale_reasons,
    summary_path,
    unit_summary,
)
from tests.unit.test_contracts import check
from tests.unit.test_engine_terragrunt import STAND_IN, VPC, Credentials, job, live, stand_in  # noqa: F401

MYSQL = "dev/us-east-1/mysql"


def change(actions, mode="managed"):
    return {"address": "x", "mode": mode, "change": {"actions": actions}}


def test_counts_follow_terraforms_own_summary():
    document = {
        "terraform_version": "1.0.3",
        "resource_changes": [
            change(["create"]),
            change(["create"]),
            change(["update"]),
            change(["delete"]),
            change(["delete", "create"]),  # a replacement: one add, one destroy
            change(["no-op"]),
            change(["read"], mode="data"),
        ],
        "output_changes": {"a": {"actions": ["create"]}, "b": {"actions": ["no-op"]}},
    }
    changes = changes_of(document)
    assert changes == PlanChanges(add=3, change=1, destroy=2, outputs=1, terraform_version="1.0.3")
    assert changes.has_changes
    assert not changes_of({"output_changes": {"b": {"actions": ["no-op"]}}}).has_changes


def test_the_state_a_plan_was_made_against_comes_from_inside_the_plan_file(tmp_path):
    planned = tmp_path / "x.tfplan"
    with zipfile.ZipFile(planned, "w") as archive:
        archive.writestr("tfplan", b"")
        archive.writestr("tfstate", json.dumps({"serial": 7, "lineage": "abc"}))
    assert prior_state(planned) == (7, "abc")
    fresh = tmp_path / "fresh.tfplan"
    with zipfile.ZipFile(fresh, "w") as archive:
        archive.writestr("tfstate", json.dumps({"serial": 0, "lineage": ""}))
    assert prior_state(fresh) is None  # no state yet: Terraform does not check it for staleness
    (tmp_path / "text").write_text("not a zip")
    assert prior_state(tmp_path / "text") is None


def unit(path, digest="d1", account="dev"):
    return Unit(path=path, account=account, account_id="444444444444", region="us-east-1", digest=digest)


def summaries():
    made = {
        "dev/app": unit_summary(
            unit("dev/app"),
            PlanChanges(add=2, change=1, outputs=1, terraform_version="1.0.3"),
            plan_file="app.tfplan",
            state=(3, "lin"),
            refarch_version="0.1.0",
            created=0,
        ),
        "dev/vpc": unit_summary(
            unit("dev/vpc"),
            PlanChanges(terraform_version="1.0.3"),
            plan_file="vpc.tfplan",
            state=None,
            refarch_version="0.1.0",
            created=0,
        ),
    }
    report = RunReport(
        run_id="r1",
        action="plan",
        engine="terraform",
        started=0,
        finished=1,
        units={
            "dev/vpc": UnitReport("dev/vpc", "dev", Status.SUCCEEDED),
            "dev/app": UnitReport("dev/app", "dev", Status.SUCCEEDED),
            "dev/db": UnitReport("dev/db", "dev", Status.FAILED, message="exit code 1\nError: boom"),
        },
    )
    return run_summary(report, made, refarch_version="0.1.0")


def test_the_run_summary_totals_the_units_with_changes():
    summary = summaries()
    assert summary["has_changes"] is True and summary["complete"] is False
    assert summary["totals"] == {
        "add": 2,
        "change": 1,
        "destroy": 0,
        "outputs": 1,
        "units_with_changes": 1,
        "units_without_changes": 1,
        "units_not_planned": 1,
    }
    rows = {r["unit"]: r for r in summary["units"]}
    assert rows["dev/app"]["state_serial"] == 3 and rows["dev/app"]["digest"] == "d1"
    assert rows["dev/db"] == {
        "unit": "dev/db",
        "account": "dev",
        "status": "failed",
        "message": "exit code 1",
    }
    assert summary["terraform_versions"] == ["1.0.3"]


def test_the_markdown_has_a_row_per_changed_unit_and_collapses_the_rest():
    text = markdown(summaries(), apply_command="refarch apply live --plan-dir plans")
    assert text.startswith("### refarch plan: 1 unit(s) with changes, 1 without, 1 not planned\n")
    assert "| `dev/app` | dev | 2 | 1 | 0 | 1 |" in text
    assert "| **total** | | **2** | **1** | **0** | **1** |" in text
    assert "`dev/vpc`" not in text.split("<details>")[0]  # no row: collapsed below
    assert "<details><summary>1 unit(s) without changes</summary>" in text
    assert "- `dev/db` (dev): failed exit code 1" in text
    assert "`refarch apply live --plan-dir plans`" in text


def test_stale_reasons_name_each_unit_that_may_not_be_applied():
    fine, changed, missing, no_file, quiet = (
        unit("a"),
        unit("b", digest="new"),
        unit("c"),
        unit("d"),
        unit("e"),
    )
    v = SCHEMA_VERSION
    mod = {"main.tf": "m1", "variables.tf": "v1"}
    saved = {
        "a": {
            "schema_version": v,
            "digest": "d1",
            "has_changes": True,
            "plan_sha256": "p-a",
            "module_files": mod,
        },
        "b": {"schema_version": v, "digest": "d1", "has_changes": True},
        "d": {"schema_version": v, "digest": "d1", "has_changes": True},
        "e": {"schema_version": v, "digest": "d1", "has_changes": False},
        "f": {
            "schema_version": v,
            "digest": "d1",
            "has_changes": True,
            "plan_sha256": "p-f",
            "mocked_dependencies": ["dev/vpc"],
        },
        "g": {"schema_version": v, "digest": "d1", "has_changes": True, "plan_sha256": "p-g"},
        "h": {"schema_version": v, "digest": "d1", "has_changes": False, "module_files": mod},
        "old": {"schema_version": 1, "digest": "d1", "has_changes": True},
    }
    files = {"a": "p-a", "b": "p-b", "d": None, "e": None, "f": "p-f", "g": "p-a", "h": None, "old": "x"}
    modules = {"a": dict(mod), "h": {"main.tf": "m2", "outputs.tf": "o1"}}
    units = [fine, changed, missing, no_file, quiet, unit("f"), unit("g"), unit("h"), unit("old")]
    reasons = stale_reasons(units, saved, files, modules)
    assert reasons == {
        "b": "its configuration changed since the plan was made",
        "c": "no saved plan (it was not planned, or its plan failed)",
        "d": "its plan file is missing",
        "f": "it was planned with the mock outputs of dev/vpc (not applied yet): apply that first",
        "g": "its plan file is not the one that was planned (its SHA-256 differs from the summary's)",
        "h": "its module changed since the plan was made (main.tf, outputs.tf, variables.tf)",
        "old": f"its plan summary has schema_version 1 (this refarch writes {v}): plan again",
    }


def test_module_files_hash_the_tree_refarch_copies_and_never_follow_links(tmp_path):
    (tmp_path / "vpc").mkdir()
    (tmp_path / "vpc" / "main.tf").write_text("resource x {}")
    (tmp_path / ".terraform").mkdir()
    (tmp_path / ".terraform" / "junk").write_text("ignored")
    (tmp_path / "terraform.tfstate").write_text("{}")
    (tmp_path / "link").symlink_to("/etc")
    files = module_files(tmp_path)
    assert set(files) == {"vpc/main.tf", "link"} and files["link"] == "symlink:/etc"
    (tmp_path / "vpc" / "main.tf").write_text("resource y {}")
    assert changed_files(files, module_files(tmp_path)) == ["vpc/main.tf"]
    assert stale_outputs({"dev/vpc": "a", "dev/db": "b"}, {"dev/vpc": "a", "dev/db": "c"}) == ["dev/db"]


# -- the terragrunt engine, through the stand-in -----------------------------------------------
@pytest.mark.parametrize("version", ["0.67.16", "1.0.2"])
def test_terragrunt_passes_an_absolute_plan_file_to_terraform(live, stand_in, tmp_path, version):  # noqa: F811
    repo = load_repo(live, cache=False)
    env = {**stand_in.env, "STANDIN_TG_VERSION": version}
    stand_in.script({VPC: {"resource_changes": [change(["create"])], "output_changes": {}}})
    engine = TerragruntEngine(binary=str(STAND_IN))
    planned = tmp_path / "plans" / "vpc.tfplan"
    planned.parent.mkdir()
    result = engine.execute(job(repo, VPC, env, action="plan", plan_file=planned, lock_timeout="5m")[0])
    assert result.process.ok, result.process.output_tail
    assert result.plan == PlanChanges(add=1, terraform_version="1.5.7")
    plan_call, show_call = stand_in.calls()[-2:]
    args = (
        plan_call["argv"][plan_call["argv"].index("--") + 1 :]
        if version == "1.0.2"
        else plan_call["argv"][1:]
    )
    assert f"-out={planned}" in args and "-lock-timeout=5m" in args
    assert plan_call["plan_file"] == str(planned) and planned.is_file()
    assert show_call["command"] == "show" and show_call["plan_file"] == str(planned)
    assert not any(a.startswith("-lock-timeout") for a in show_call["argv"])

    applied = engine.execute(job(repo, VPC, env, action="apply", plan_file=planned)[0])
    assert applied.process.ok, applied.process.output_tail
    call = stand_in.calls()[-1]
    assert call["command"] == "apply" and call["plan_file"] == str(planned)
    assert call["argv"][-1] == str(planned) or str(planned) in call["argv"]


def test_a_relative_plan_dir_still_reaches_terraform_as_an_absolute_path(live, stand_in, monkeypatch):  # noqa: F811
    monkeypatch.chdir(live.parent)
    repo = load_repo(live, cache=False)
    engine = TerragruntEngine(binary=str(STAND_IN))
    unit_job, _ = job(repo, VPC, stand_in.env, action="plan", plan_file=Path("rel.tfplan"))
    argv, _env = engine.command(unit_job)
    assert f"-out={live.parent / 'rel.tfplan'}" in argv


def run_saved(live, stand_in, action, **options):  # noqa: F811
    repo = load_repo(live, cache=False)
    selected = plan(repo, action, include=[VPC, MYSQL], ignore_dependencies=True)
    return run(
        selected,
        action,
        engine=TerragruntEngine(binary=str(STAND_IN)),
        credentials=Credentials(),
        base_env=stand_in.env,
        sleep=lambda _s: None,
        options=RunOptions(history=False, **options),
    )


def test_plan_then_apply_exactly_those_plans_through_run(live, stand_in, tmp_path):  # noqa: F811
    vpc = {"output_changes": {"id": {"actions": ["create"]}}, "outputs": {"vpc_id": "vpc-1"}}
    stand_in.script({VPC: vpc})  # mysql: nothing
    plans = tmp_path / "plans"
    report = run_saved(live, stand_in, "plan", out_dir=plans)
    assert report.ok, {p: u.message for p, u in report.units.items()}
    assert stat.S_IMODE(plans.stat().st_mode) == 0o700
    for path in (VPC, MYSQL):
        assert stat.S_IMODE(plan_path(plans, path).stat().st_mode) == 0o600
        assert stat.S_IMODE(summary_path(plans, path).stat().st_mode) == 0o600
    assert json.loads(summary_path(plans, VPC).read_text())["has_changes"] is True
    assert json.loads(summary_path(plans, MYSQL).read_text())["has_changes"] is False
    summary = json.loads((plans / "summary.json").read_text())
    assert summary["totals"]["units_with_changes"] == 1 and summary["run_id"] == report.run_id
    assert "<details><summary>1 unit(s) without changes</summary>" in (plans / "summary.md").read_text()

    before = len(stand_in.calls())
    applied = run_saved(live, stand_in, "apply", plan_dir=plans)
    assert applied.ok, {p: u.message for p, u in applied.units.items()}
    assert applied.units[MYSQL].message == NOTHING_TO_APPLY
    calls = stand_in.calls()[before:]
    assert [(c["command"], c["plan_file"]) for c in calls if c["command"] != "output"] == [
        ("apply", str(plan_path(plans, VPC)))
    ]

    # the same folder again: applied already, said so (not "failed ... stale"), nothing runs
    before = len(stand_in.calls())
    again = run_saved(live, stand_in, "apply", plan_dir=plans)
    assert again.ok and [c for c in stand_in.calls()[before:] if c["command"] != "output"] == []
    assert again.units[VPC].message == f"its saved plan was already applied by run {applied.run_id}"


def test_a_plan_whose_dependency_outputs_changed_is_stale_never_no_changes(live, stand_in, tmp_path):  # noqa: F811
    """mysql was planned (no changes) with vpc's outputs; the apply of vpc changes them:
    mysql's plan is reported stale, not applied as "nothing to apply"."""
    stand_in.script(
        {VPC: {"output_changes": {"id": {"actions": ["update"]}}, "outputs": {"vpc_id": "vpc-1"}}}
    )
    plans = tmp_path / "plans"
    assert run_saved(live, stand_in, "plan", out_dir=plans).ok
    recorded = json.loads(summary_path(plans, MYSQL).read_text())
    assert list(recorded["dependency_outputs"]) == [VPC] and len(recorded["plan_sha256"]) == 64
    assert recorded["module_files"] is None  # a git source: its ?ref= is in the unit digest
    check("saved-plan", recorded)
    stand_in.script({VPC: {"outputs": {"vpc_id": "vpc-2"}}})  # what applying vpc did
    applied = run_saved(live, stand_in, "apply", plan_dir=plans)
    unit = applied.units[MYSQL]
    assert unit.status == Status.FAILED and unit.message != NOTHING_TO_APPLY
    assert f"saved plan is stale: the outputs of {VPC} changed since it was made" in unit.message
    assert applied.exit_code == 1


def test_swapped_plan_files_and_changed_modules_are_refused_before_anything_runs(live, stand_in, tmp_path):  # noqa: F811
    stand_in.script({p: {"output_changes": {"id": {"actions": ["create"]}}} for p in (VPC, MYSQL)})
    plans = tmp_path / "plans"
    assert run_saved(live, stand_in, "plan", out_dir=plans).ok
    a, b = plan_path(plans, VPC), plan_path(plans, MYSQL)
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    a.write_bytes(b_bytes + b"x")
    b.write_bytes(a_bytes + b"y")
    before = len(stand_in.calls())
    with pytest.raises(StalePlan) as refused:
        run_saved(live, stand_in, "apply", plan_dir=plans)
    assert str(refused.value).count("its plan file is not the one that was planned") == 2
    assert len(stand_in.calls()) == before

    modules = tmp_path / "modules"  # a local module tree (--source): every file is bound
    (modules / "vpc").mkdir(parents=True)
    (modules / "vpc" / "main.tf").write_text('variable "cidr_block" {}\n')
    assert run_saved(live, stand_in, "plan", out_dir=plans, source_override=modules).ok
    (modules / "vpc" / "main.tf").write_text('variable "cidr_block" { default = "x" }\n')
    before = len(stand_in.calls())
    with pytest.raises(StalePlan) as refused:
        run_saved(live, stand_in, "apply", plan_dir=plans, source_override=modules)
    assert "its module changed since the plan was made (vpc/main.tf)" in str(refused.value)
    assert len(stand_in.calls()) == before


def test_apply_refuses_before_anything_runs_when_a_unit_changed_or_has_no_plan(live, stand_in, tmp_path):  # noqa: F811
    plans = tmp_path / "plans"
    assert run_saved(live, stand_in, "plan", out_dir=plans).ok
    plan_path(plans, MYSQL).unlink()
    summary_path(plans, MYSQL).unlink()
    hcl = live / VPC / "terragrunt.hcl"
    hcl.write_text(hcl.read_text() + "\n# changed after the plan\n")
    before = len(stand_in.calls())
    with pytest.raises(StalePlan) as refused:
        run_saved(live, stand_in, "apply", plan_dir=plans)
    assert refused.value.problems == {
        VPC: "its configuration changed since the plan was made",
        MYSQL: "no saved plan (it was not planned, or its plan failed)",
    }
    assert "plan again (refarch plan-all" in str(refused.value) and refused.value.exit_code == 2
    assert len(stand_in.calls()) == before  # nothing ran


def test_saved_plan_folders_go_with_their_verbs_only(live, stand_in, tmp_path):  # noqa: F811
    with pytest.raises(UsageError, match="goes with plan-all"):
        run_saved(live, stand_in, "apply", out_dir=tmp_path / "p")
    with pytest.raises(UsageError, match="is not a folder of saved plans"):
        run_saved(live, stand_in, "apply", plan_dir=tmp_path / "none")


def test_a_failed_plan_leaves_no_older_plan_to_apply(live, stand_in, tmp_path):  # noqa: F811
    plans = tmp_path / "plans"
    assert run_saved(live, stand_in, "plan", out_dir=plans).ok
    stand_in.script({VPC: {"fail_times": 9, "stderr": "Error: boom"}})
    again = run_saved(live, stand_in, "plan", out_dir=plans)
    assert again.units[VPC].status == Status.FAILED
    assert not plan_path(plans, VPC).exists() and not summary_path(plans, VPC).exists()
    # mysql depends on vpc: its plan reads vpc's state, so a failed vpc plan holds it back no more
    assert "**Not planned (1)" in (plans / "summary.md").read_text()
    with pytest.raises(StalePlan):
        run_saved(live, stand_in, "apply", plan_dir=plans)


def test_an_existing_out_dir_is_made_private(live, stand_in, tmp_path):  # noqa: F811
    plans = tmp_path / "plans"
    plans.mkdir(mode=0o755)
    plans.chmod(0o755)
    assert run_saved(live, stand_in, "plan", out_dir=plans).ok
    assert stat.S_IMODE(plans.stat().st_mode) == 0o700
