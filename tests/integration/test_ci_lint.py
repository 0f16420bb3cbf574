"""The pipelines `refarch ci` emits pass actionlint (GitHub Actions) and the GitLab CI JSON
schema that check-jsonschema vendors, for the demo repo and the test fixture. Both tools run
offline: every proxy variable points at a closed port on 127.0.0.1, so a tool that tried to
download anything would fail rather than reach the network."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from refarch.cli import cli

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "live"
OFFLINE = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
}


def tool(name):
    """The tool from the venv running the tests (the dev extra installs it), else PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]' installs it); not downloading it")
    return found


def run(argv, cwd):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(OFFLINE)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


# refarch is not on PyPI: the jobs install a wheel the repo names ([ci] install), checked
# against its SHA256; the fixtures keep the local ledger, so the lint runs say so.
CI_FLAGS = [
    "--install",
    "ci/refarch-0.1.0-py3-none-any.whl",
    "--install-sha256",
    "a" * 64,
    "--allow-local-ledger",
]
TERRAGRUNT_SUM = "b" * 64
DEMO_ACCOUNTS = (
    "security=111111111111,shared-services=222222222222,logs=333333333333,dev=444444444444,prod=666666666666"
)


README_INSTALL = ["--ci-install", "ci/refarch-0.1.0-py3-none-any.whl", "--ci-install-sha256", "a" * 64]


def render_demo(target, regions, *extra):
    """`refarch new --flavour demo`, as the README does."""
    argv = ["new", str(target), "--org", "acme", "--accounts", DEMO_ACCOUNTS, "--regions", regions, *extra]
    result = CliRunner().invoke(cli, [*argv, "--flavour", "demo"])
    assert result.exit_code == 0, result.output
    return target


@pytest.fixture(params=["demo", "fixture"])
def live(request, tmp_path):
    if request.param == "fixture":
        return FIXTURE
    return render_demo(tmp_path / "demo-live", "us-east-1,us-west-2")


@pytest.mark.parametrize("engine", ["terraform", "terragrunt"])
def test_github_workflows_pass_actionlint(live, tmp_path, engine):
    actionlint = tool("actionlint")
    out = tmp_path / "repo"
    argv = ["ci", "github", str(live), "--out", str(out), "--engine", engine, *CI_FLAGS]
    result = CliRunner().invoke(cli, [*argv, "--terragrunt-sha256", TERRAGRUNT_SUM])
    assert result.exit_code == 0, result.output
    workflows = sorted((out / ".github" / "workflows").glob("*.yml"))
    assert [w.name for w in workflows] == ["refarch-apply.yml", "refarch-plan.yml"]
    lint = run([actionlint, "-no-color", *map(str, workflows)], cwd=out)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("engine", ["terraform", "terragrunt"])
def test_gitlab_pipeline_passes_the_gitlab_ci_schema(live, tmp_path, engine):
    check = tool("check-jsonschema")
    out = tmp_path / "repo"
    argv = ["ci", "gitlab", str(live), "--out", str(out), "--engine", engine, *CI_FLAGS]
    result = CliRunner().invoke(cli, [*argv, "--terragrunt-sha256", TERRAGRUNT_SUM])
    assert result.exit_code == 0, result.output
    lint = run(
        [check, "--builtin-schema", "vendor.gitlab-ci", "--no-cache", str(out / ".gitlab-ci.yml")], cwd=out
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "ok" in lint.stdout


def test_the_drift_workflow_and_jobs_pass_actionlint_and_the_gitlab_ci_schema(tmp_path):
    """`[ci] drift_schedule` adds .github/workflows/refarch-drift.yml and the GitLab drift jobs."""
    live = tmp_path / "live"
    shutil.copytree(FIXTURE, live, ignore=shutil.ignore_patterns(".refarch"))
    (live / "refarch.toml").write_text('[ci]\ndrift_schedule = "0 6 * * 1-5"\nplan_role_name = "ReadOnly"\n')
    out = tmp_path / "repo"
    for system in ("github", "gitlab"):
        result = CliRunner().invoke(cli, ["ci", system, str(live), "--out", str(out), *CI_FLAGS])
        assert result.exit_code == 0, result.output
    drift = out / ".github" / "workflows" / "refarch-drift.yml"
    lint = run([tool("actionlint"), "-no-color", str(drift)], cwd=out)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    gitlab = out / ".gitlab-ci.yml"
    assert "drift-dev:" in gitlab.read_text()
    check = [tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", "--no-cache", str(gitlab)]
    lint = run(check, cwd=out)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_schema_check_catches_a_broken_pipeline(tmp_path):
    """The check is real: a job with an unknown keyword fails it."""
    check = tool("check-jsonschema")
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text("apply:\n  script: [true]\n  needz: []\n")
    lint = run([check, "--builtin-schema", "vendor.gitlab-ci", "--no-cache", str(broken)], cwd=tmp_path)
    assert lint.returncode == 1, lint.stdout + lint.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The check is real: a job that needs a job that does not exist fails it."""
    actionlint = tool("actionlint")
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: [nothing]\n"
        "    steps:\n      - run: 'true'\n"
    )
    lint = run([actionlint, "-no-color", str(broken)], cwd=tmp_path)
    assert lint.returncode == 1, lint.stdout + lint.stderr


def test_the_readme_shows_the_workflow_refarch_ci_emits_for_the_demo_repo(tmp_path):
    import refarch
    from refarch import ci

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("# Generated by `refarch ci github live`")
    shown = readme[start : readme.index("  plan-security-step-2:\n", start)]
    live = render_demo(tmp_path / "live", "us-east-1", *README_INSTALL)
    emitted = ci.generate(refarch.load_repo(live, cache=False), "github", directory="live")
    assert emitted[ci.GITHUB_APPLY_FILE].startswith(shown)
    options = ci.CiOptions(install="refarch.whl", install_sha256="a" * 64)
    pipeline = ci.pipeline(refarch.plan(refarch.load_repo(live, cache=False), "apply"), "live", options)
    rows = [(j.id, j.tier, len(j.units), j.needs) for j in pipeline.jobs]
    assert rows == [
        ("apply-security", 1, 2, ()),
        ("apply-security-step-2", 1, 4, ("apply-security",)),
        ("apply-security-step-3", 1, 1, ("apply-security-step-2",)),
        ("apply-shared-services", 2, 4, ("apply-security-step-3",)),
        ("apply-shared-services-step-2", 2, 4, ("apply-shared-services",)),
        ("apply-dev", 3, 6, ("apply-logs-step-2",)),
        ("apply-dev-step-2", 3, 8, ("apply-dev",)),
        ("apply-dev-step-3", 3, 1, ("apply-dev-step-2",)),
        ("apply-logs", 3, 3, ("apply-shared-services-step-2",)),
        ("apply-logs-step-2", 3, 2, ("apply-logs",)),
        ("apply-prod", 3, 6, ("apply-logs-step-2",)),
        ("apply-prod-step-2", 3, 8, ("apply-prod",)),
        ("apply-prod-step-3", 3, 1, ("apply-prod-step-2",)),
    ]


def test_changed_since_deployed_compares_with_each_units_last_successful_apply(tmp_path):
    """`--changed-since deployed`: a unit whose digest differs from its last successful apply
    in the ledger, or whose local module changed in git since that apply's commit, or that was
    never deployed; plus dependents. (The local ledger here; CI reads the shared one.)"""
    import refarch
    from refarch.jobs.deployed import changes_since_deployed
    from refarch.runner.ledger import Ledger, runs_dir
    from tests.integration.test_changes import DEV_APP, git

    top, live = _world(tmp_path)
    repo = refarch.load_repo(live, cache=False)
    commit = git(top, "rev-parse", "HEAD").strip()
    ledger = Ledger(runs_dir(live) / "20261201T000000000Z-aaaaaa.jsonl")
    deployed = [p for p in repo.units if p != "stage/us-east-1/vpc"]  # stage's vpc: never deployed
    ledger.write("run_start", run_id="20261201T000000000Z-aaaaaa", action="apply", units=deployed,
                 digests={p: repo.units[p].digest for p in deployed}, git_commit=commit)  # fmt: skip
    for path in deployed:
        ledger.write(
            "unit_finish", unit=path, status="succeeded", action="apply", digest=repo.units[path].digest
        )
    ledger.close()
    stage = {p for p in repo.units if p.startswith("stage/")}
    assert set(changes_since_deployed(repo).selected) == stage  # the vpc and its dependents
    (top / "modules" / "app" / "main.tf").write_text('variable "desired_count" {}\n# changed\n')
    git(top, "commit", "-qam", "the app module")
    changed = changes_since_deployed(refarch.load_repo(live, cache=False))
    assert DEV_APP in changed.changed and set(changed.selected) == stage | {DEV_APP}


def _world(tmp_path):
    import shutil

    from tests.integration.test_changes import DEV_APP, git

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
    return top, live
