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


@pytest.fixture(params=["demo", "fixture"])
def live(request, tmp_path):
    if request.param == "fixture":
        return FIXTURE
    target = tmp_path / "demo-live"
    result = CliRunner().invoke(
        cli,
        [
            "new",
            str(target),
            "--org",
            "acme",
            "--accounts",
            "security=111111111111,shared-services=222222222222,logs=333333333333,"
            "dev=444444444444,prod=666666666666",
            "--regions",
            "us-east-1,us-west-2",
            "--flavour",
            "demo",
        ],
    )
    assert result.exit_code == 0, result.output
    return target


@pytest.mark.parametrize("engine", ["terraform", "terragrunt"])
def test_github_workflows_pass_actionlint(live, tmp_path, engine):
    actionlint = tool("actionlint")
    out = tmp_path / "repo"
    result = CliRunner().invoke(cli, ["ci", "github", str(live), "--out", str(out), "--engine", engine])
    assert result.exit_code == 0, result.output
    workflows = sorted((out / ".github" / "workflows").glob("*.yml"))
    assert [w.name for w in workflows] == ["refarch-apply.yml", "refarch-plan.yml"]
    lint = run([actionlint, "-no-color", *map(str, workflows)], cwd=out)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("engine", ["terraform", "terragrunt"])
def test_gitlab_pipeline_passes_the_gitlab_ci_schema(live, tmp_path, engine):
    check = tool("check-jsonschema")
    out = tmp_path / "repo"
    result = CliRunner().invoke(cli, ["ci", "gitlab", str(live), "--out", str(out), "--engine", engine])
    assert result.exit_code == 0, result.output
    lint = run(
        [check, "--builtin-schema", "vendor.gitlab-ci", "--no-cache", str(out / ".gitlab-ci.yml")], cwd=out
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "ok" in lint.stdout


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
