"""`refarch ci`: the apply plan sliced into jobs (refarch/ci.py), as data and as YAML."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import refarch
from refarch import ci
from refarch.cli import cli
from refarch.errors import UsageError
from refarch.models import Account, Repo, Unit
from refarch.settings import Settings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "live"
TIERS = {"security": 1, "shared-services": 2}


def make_repo(edges, extra=()):
    """Units named account/unit; edges: {unit: [dependencies]}."""
    names = sorted({*edges, *(d for deps in edges.values() for d in deps), *extra})
    units = {
        n: Unit(
            path=n,
            account=n.split("/")[0],
            account_id=None,
            region="us-east-1",
            tier=TIERS.get(n.split("/")[0], 3),
            dependencies=tuple(edges.get(n, ())),
        )
        for n in names
    }
    accounts = tuple(
        Account(a, None, TIERS.get(a, 3), ("us-east-1",), tuple(p for p in names if p.startswith(a + "/")))
        for a in sorted({n.split("/")[0] for n in names})
    )
    return Repo(root=Path("/nonexistent"), units=units, accounts=accounts, settings=Settings())


def applied_by(repo, job, options):
    """What `refarch apply --include ... --ignore-dependencies` of the job really selects."""
    plan = refarch.plan(
        repo, "apply", include=job.includes, exclude=options.exclude, ignore_dependencies=True
    )
    return set(plan.units)


def test_one_job_per_account_needs_mirror_the_tiers_and_each_unit_is_applied_once():
    repo = refarch.load_repo(FIXTURE, cache=False)
    plan = refarch.plan(repo, "apply")
    pipeline = ci.pipeline(plan, "live")
    ids = [job.id for job in pipeline.jobs]
    assert ids == [
        "apply-security",
        "apply-shared-services",
        "apply-dev",
        "apply-logs",
        "apply-prod",
        "apply-stage",
    ]
    assert pipeline.job("apply-security").needs == ()
    assert pipeline.job("apply-shared-services").needs == ("apply-security",)
    for job_id in ids[2:]:  # tier 3 waits for tier 2, which waits for tier 1
        assert pipeline.job(job_id).needs == ("apply-shared-services",)
    seen: list[str] = []
    for job in pipeline.jobs:
        assert applied_by(repo, job, pipeline.options) == set(job.units)
        seen.extend(job.units)
    assert sorted(seen) == sorted(plan.units)  # every unit, exactly once
    assert "prod/us-east-1/legacy" in plan.skipped  # (skip = true: in no job's plan)
    argv = pipeline.apply_argv(pipeline.job("apply-dev"))
    assert argv[:3] == ["refarch", "apply", "live"]
    assert "--ignore-dependencies" in argv and "--non-interactive" in argv
    assert argv[argv.index("--include") + 1] == "dev"


def test_cross_account_dependencies_in_a_tier_become_needs():
    repo = make_repo(
        {
            "shared-services/ecr": ["security/kms"],
            "dev/app": ["shared-services/ecr", "logs/archive"],
            "prod/app": ["shared-services/ecr"],
        },
        extra=["logs/archive"],
    )
    pipeline = ci.pipeline(refarch.plan(repo, "apply"), ".", ci.CiOptions(granularity="account"))
    assert pipeline.job("apply-dev").needs == ("apply-logs",)  # logs already waits for tier 2
    assert pipeline.job("apply-prod").needs == ("apply-shared-services",)


def test_accounts_that_depend_on_each_other_share_a_job():
    repo = make_repo({"dev/app": ["logs/bucket"], "logs/reader": ["dev/vpc"]}, extra=["prod/app"])
    pipeline = ci.pipeline(refarch.plan(repo, "apply"), ".", ci.CiOptions(granularity="account"))
    assert [j.accounts for j in pipeline.jobs] == [("dev", "logs"), ("prod",)]
    assert [j.id for j in pipeline.jobs] == ["apply-dev-logs", "apply-prod"]
    merged = pipeline.jobs[0]
    assert applied_by(repo, merged, pipeline.options) == {"dev/app", "dev/vpc", "logs/bucket", "logs/reader"}


def test_auto_merges_a_tier_whose_accounts_can_only_run_one_after_the_other():
    chain = make_repo({"dev/app": ["logs/bucket"], "prod/app": ["dev/app"]})
    jobs = ci.pipeline(refarch.plan(chain, "apply"), ".").jobs
    assert [(j.id, j.accounts) for j in jobs] == [("apply-tier-3", ("dev", "logs", "prod"))]
    parallel = make_repo({"dev/app": ["logs/bucket"]}, extra=["prod/app"])
    jobs = ci.pipeline(refarch.plan(parallel, "apply"), ".").jobs
    assert [j.id for j in jobs] == ["apply-dev", "apply-logs", "apply-prod"]
    tier = ci.pipeline(refarch.plan(parallel, "apply"), ".", ci.CiOptions(granularity="tier")).jobs
    assert [j.id for j in tier] == ["apply-tier-3"]


def test_include_patterns_never_reach_into_another_jobs_units():
    # dev/shared holds a unit of dev's job, but its folder also holds a logs unit
    repo = make_repo({}, extra=["dev/a/x", "dev/a/y", "dev/b/z"])
    units = {**repo.units}
    units["dev/b/w"] = Unit(path="dev/b/w", account="logs", account_id=None, region=None, tier=3)
    repo = Repo(
        root=repo.root,
        units=dict(sorted(units.items())),
        accounts=(
            Account("dev", None, 3, (), ("dev/a/x", "dev/a/y", "dev/b/z")),
            Account("logs", None, 3, (), ("dev/b/w",)),
        ),
        settings=Settings(),
    )
    pipeline = ci.pipeline(refarch.plan(repo, "apply"), ".", ci.CiOptions(granularity="account"))
    assert pipeline.job("apply-dev").includes == ("dev/a", "dev/b/z")
    assert pipeline.job("apply-logs").includes == ("dev/b/w",)


def test_github_workflows_plan_pull_requests_and_apply_the_branch():
    repo = refarch.load_repo(FIXTURE, cache=False)
    files = ci.generate(repo, "github", ci.CiOptions(branch="trunk"), directory="infra/live")
    assert set(files) == {ci.GITHUB_PLAN_FILE, ci.GITHUB_APPLY_FILE}
    apply_doc = yaml.safe_load(files[ci.GITHUB_APPLY_FILE])
    assert apply_doc["on"]["push"]["branches"] == ["trunk"]
    assert apply_doc["permissions"]["id-token"] == "write"
    job = apply_doc["jobs"]["apply-dev"]
    assert job["needs"] == ["apply-shared-services"]
    creds = next(s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/"))
    assert creds["with"]["role-to-assume"] == "${{ vars.REFARCH_CI_ROLE_ARN }}"
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    assert "infra/live/.refarch/runs/" in upload["with"]["path"]
    plan_doc = yaml.safe_load(files[ci.GITHUB_PLAN_FILE])
    run = next(s for s in plan_doc["jobs"]["plan"]["steps"] if "plan-all" in s.get("run", ""))
    assert '--changed-since "origin/$BASE_REF"' in run["run"]
    assert plan_doc["jobs"]["plan"]["steps"][0]["with"]["fetch-depth"] == 0
    # saved plans: the markdown summary is the job summary; the artifact keeps the summaries
    # but not the binary plans, which can hold secrets
    assert "--out-dir refarch-plans" in run["run"]
    steps = plan_doc["jobs"]["plan"]["steps"]
    post = next(s for s in steps if s.get("name") == "post the plan summary")
    assert (
        post["if"] == "always()" and 'cat refarch-plans/summary.md >> "$GITHUB_STEP_SUMMARY"' in post["run"]
    )
    kept = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))["with"]["path"]
    assert "refarch-plans/\n" in kept and "!refarch-plans/*.tfplan" in kept
    assert files[ci.GITHUB_APPLY_FILE].startswith(ci.GENERATED_MARK)
    # deterministic: the same repo gives the same text
    assert files == ci.generate(repo, "github", ci.CiOptions(branch="trunk"), directory="infra/live")


def test_gitlab_pipeline_uses_id_tokens_resource_groups_and_needs():
    repo = refarch.load_repo(FIXTURE, cache=False)
    doc = yaml.safe_load(ci.generate(repo, "gitlab", directory=".")[ci.GITLAB_FILE])
    assert doc[".refarch"]["id_tokens"]["AWS_ID_TOKEN"]["aud"] == "sts.amazonaws.com"
    assert doc["apply-security"]["needs"] == []
    assert doc["apply-logs"]["needs"] == ["apply-shared-services"]
    assert doc["apply-logs"]["resource_group"] == "refarch-apply-logs"
    assert doc["apply-logs"]["stage"] == "tier-3"
    assert doc["stages"] == ["plan", "tier-1", "tier-2", "tier-3"]
    assert doc["refarch-plan"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert "--out-dir refarch-plans" in doc["refarch-plan"]["script"][-1]
    assert "refarch-plans/" in doc["refarch-plan"]["artifacts"]["paths"]
    assert doc["refarch-plan"]["artifacts"]["exclude"] == ["refarch-plans/*.tfplan"]


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError):
        ci.CiOptions(granularity="region")
    with pytest.raises(UsageError):
        ci.CiOptions(role_variable="not a name")


def test_cli_writes_the_files_and_keeps_a_file_it_did_not_generate(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["ci", "github", str(FIXTURE), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    apply_file = tmp_path / ci.GITHUB_APPLY_FILE
    assert apply_file.read_text().startswith(ci.GENERATED_MARK)
    again = runner.invoke(cli, ["ci", "github", str(FIXTURE), "--out", str(tmp_path)])
    assert again.exit_code == 0, again.output  # its own files are replaced
    gitlab = tmp_path / ci.GITLAB_FILE
    gitlab.write_text("stages: [build]\n")
    refused = runner.invoke(cli, ["ci", "gitlab", str(FIXTURE), "--out", str(tmp_path)])
    assert refused.exit_code == 2
    assert "not generated by refarch ci" in refused.output
    assert gitlab.read_text() == "stages: [build]\n"
    printed = runner.invoke(cli, ["ci", "gitlab", str(FIXTURE), "--stdout"])
    assert printed.exit_code == 0 and "apply-security:" in printed.output
