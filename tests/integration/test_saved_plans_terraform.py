"""Saved plans with the real Terraform 1.0.3 and the moto server: `plan-all --out-dir` keeps
binary plans and summaries, `apply --plan-dir` applies exactly them (state in S3), and stale
plans are refused — a changed unit before anything runs, a changed state by Terraform itself.

The fixture modules have no provider, so their plans change outputs only (resource counts 0).
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from refarch import load_repo
from refarch.engines.terraform import TerraformEngine
from refarch.errors import StalePlan
from refarch.models import Plan, RunReport, Status
from refarch.planner import plan as make_plan
from refarch.runner.run import RunOptions, run
from refarch.runner.saved_plans import IN_PLACE, NOTHING_TO_APPLY, plan_path, summary_path
from tests.integration.test_terraform_engine import (
    CONSUMER_UNIT,
    ECHO_UNIT,
    Harness,
    bucket_for,
    write_live,
)
from tests.unit.test_contracts import check

pytestmark = pytest.mark.integration

NEW = "security/us-east-1/new"  # no state yet: its plan creates outputs
KEPT = "security/us-east-1/kept"  # applied before: its plan changes nothing


@pytest.fixture
def harness(tmp_path: Path, moto_server: Any) -> Harness:
    h = Harness(tmp_path, moto_server.endpoint_url)
    h.make_backend("security")
    return h


def selection(harness: Harness, action: str, *units: str) -> Plan:
    repo = load_repo(harness.root, env=harness.base_env, settings=harness.settings, cache=False)
    return make_plan(repo, action, include=list(units) or (), ignore_dependencies=bool(units))


def go(harness: Harness, action: str, *units: str, **options: Any) -> RunReport:
    return run(
        selection(harness, action, *units),
        action,
        harness.settings,
        engine=TerraformEngine(harness.settings),
        base_env=harness.base_env,
        options=RunOptions(history=False, **options),
    )


def state(harness: Harness, path: str) -> dict[str, Any]:
    s3 = harness.client("s3", "security")
    body = s3.get_object(Bucket=bucket_for("security"), Key=f"{path}/terraform.tfstate")["Body"].read()
    return dict(json.loads(body))


def refarch(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, **harness.base_env, "CI": "true"}
    command = [sys.executable, "-c", "from refarch.cli import main; main()", *args]
    return subprocess.run(command, env=env, text=True, capture_output=True, timeout=300, check=False)


def test_plan_all_saves_plans_and_apply_applies_exactly_them(harness: Harness, tmp_path: Path) -> None:
    write_live(harness.root, {NEW: ECHO_UNIT % "new", KEPT: ECHO_UNIT % "kept"})
    assert go(harness, "apply", KEPT).ok
    kept_serial = state(harness, KEPT)["serial"]
    plans = tmp_path / "plans"

    planned = refarch(
        harness, "plan-all", str(harness.root), "--engine", "terraform", "--out-dir", str(plans)
    )
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert f"--plan-dir {plans}" in planned.stderr  # what to run next
    assert stat.S_IMODE(plans.stat().st_mode) == 0o700
    for path in (NEW, KEPT):
        assert stat.S_IMODE(plan_path(plans, path).stat().st_mode) == 0o600
        assert stat.S_IMODE(summary_path(plans, path).stat().st_mode) == 0o600
    new = json.loads(summary_path(plans, NEW).read_text())
    kept = json.loads(summary_path(plans, KEPT).read_text())
    assert (new["has_changes"], new["add"], new["outputs"]) == (True, 0, 3)  # greeting, details, token
    assert (new["state_serial"], new["state_lineage"]) == (None, None)  # no state to be made against
    assert kept["has_changes"] is False and kept["state_serial"] == kept_serial and kept["state_lineage"]
    assert new["terraform_version"] == "1.0.3" and new["digest"]
    summary = json.loads((plans / "summary.json").read_text())
    assert summary["totals"]["units_with_changes"] == 1 and summary["totals"]["units_without_changes"] == 1
    text = (plans / "summary.md").read_text()
    assert f"| `{NEW}` | security | 0 | 0 | 0 | 3 |" in text and f"- `{KEPT}` (security)" in text

    # A plan is bound to its module's files: a change to the module after the plan is
    # refused before anything runs, naming the file.
    module = harness.root.parent / "modules" / "echo" / "main.tf"
    original = module.read_text()
    module.write_text(original + '\noutput "added_later" {\n  value = "x"\n}\n')
    command = ["apply", str(harness.root), "--engine", "terraform", "--plan-dir", str(plans), "-y"]
    refused = refarch(harness, *command)
    assert (
        refused.returncode == 2
        and "its module changed since the plan was made (echo/main.tf)" in refused.stderr
    )
    assert state(harness, KEPT)["serial"] == kept_serial
    module.write_text(original)
    applied = refarch(harness, *command)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert NOTHING_TO_APPLY in applied.stderr
    outputs = state(harness, NEW)["outputs"]
    assert outputs["greeting"]["value"] == "hello new" and "added_later" not in outputs
    assert state(harness, KEPT)["serial"] == kept_serial  # skipped: no changes in its plan


def test_a_changed_unit_is_refused_before_anything_runs(harness: Harness, tmp_path: Path) -> None:
    write_live(harness.root, {NEW: ECHO_UNIT % "new"})
    plans = tmp_path / "plans"
    assert go(harness, "plan", out_dir=plans).ok
    (harness.root / NEW / "terragrunt.hcl").write_text(ECHO_UNIT % "renamed")
    with pytest.raises(StalePlan, match="its configuration changed since the plan was made"):
        go(harness, "apply", plan_dir=plans)
    assert harness.state_keys("security") == []  # nothing was applied


def test_a_plan_made_stale_by_another_apply_is_refused_with_what_to_do(
    harness: Harness, tmp_path: Path
) -> None:
    write_live(harness.root, {KEPT: ECHO_UNIT % "one"})
    assert go(harness, "apply").ok
    (harness.root / KEPT / "terragrunt.hcl").write_text(ECHO_UNIT % "two")
    plans = tmp_path / "plans"
    assert go(harness, "plan", out_dir=plans).ok
    # someone applies another configuration in between, then the reviewed one is back
    (harness.root / KEPT / "terragrunt.hcl").write_text(ECHO_UNIT % "three")
    assert go(harness, "apply").ok
    (harness.root / KEPT / "terragrunt.hcl").write_text(ECHO_UNIT % "two")
    serial = state(harness, KEPT)["serial"]

    report = go(harness, "apply", plan_dir=plans)
    unit = report.units[KEPT]  # a fresh plan of the reviewed configuration changes something
    assert unit.status == Status.FAILED and unit.attempts == 1
    assert "saved-plan-stale" in unit.message and "Saved plan is stale" in unit.message
    assert "plan again (refarch plan-all DIR --out-dir PLANDIR)" in unit.message
    assert state(harness, KEPT)["serial"] == serial  # nothing applied
    assert harness.locks("security") == []


def test_a_stale_plan_whose_reviewed_changes_are_in_place_succeeds_without_applying(
    harness: Harness, tmp_path: Path
) -> None:
    """As when a CI job is killed right after its apply wrote the state, before the run
    recorded it: the retry finds the plan stale, but the reviewed changes are there."""
    write_live(harness.root, {KEPT: ECHO_UNIT % "one"})
    assert go(harness, "apply").ok
    (harness.root / KEPT / "terragrunt.hcl").write_text(ECHO_UNIT % "two")
    plans = tmp_path / "plans"
    assert go(harness, "plan", out_dir=plans).ok
    assert go(harness, "apply").ok  # the reviewed configuration applied, not from the plan
    serial = state(harness, KEPT)["serial"]

    report = go(harness, "apply", plan_dir=plans)
    unit = report.units[KEPT]
    assert unit.status == Status.SUCCEEDED and unit.message == IN_PLACE, unit.message
    assert state(harness, KEPT)["serial"] == serial  # nothing applied
    assert harness.locks("security") == []


# The consumer unit, with mocks allowed for plan while its dependency has no outputs yet.
MOCKED_CONSUMER = (CONSUMER_UNIT % "../new").replace(
    "  mock_outputs = ", '  mock_outputs_allowed_terraform_commands = ["plan"]\n  mock_outputs = '
)


def test_a_plan_made_with_mock_outputs_is_never_applied(harness: Harness, tmp_path: Path) -> None:
    consumer = "security/us-east-1/consumer"
    write_live(harness.root, {NEW: ECHO_UNIT % "new", consumer: MOCKED_CONSUMER})
    plans = tmp_path / "plans"
    report = go(harness, "plan", out_dir=plans)
    assert report.ok, {p: u.message for p, u in report.units.items()}
    assert json.loads(summary_path(plans, consumer).read_text())["mocked_dependencies"] == [NEW]
    with pytest.raises(StalePlan, match=f"planned with the mock outputs of {NEW}"):
        go(harness, "apply", plan_dir=plans)
    assert harness.state_keys("security") == []


def test_a_plan_whose_dependency_an_earlier_apply_changed_is_stale_not_no_changes(
    harness: Harness, tmp_path: Path
) -> None:
    """The consumer's plan (no changes) was made with new's old outputs; applying new's plan
    changes them in the same run: the consumer is reported stale (re-plan), never "nothing
    applied"."""
    consumer = "security/us-east-1/consumer"
    write_live(harness.root, {NEW: ECHO_UNIT % "new", consumer: CONSUMER_UNIT % "../new"})
    assert go(harness, "apply").ok
    serial = state(harness, consumer)["serial"]
    (harness.root / NEW / "terragrunt.hcl").write_text(ECHO_UNIT % "renamed")
    plans = tmp_path / "plans"
    assert go(harness, "plan", out_dir=plans).ok
    saved = json.loads(summary_path(plans, consumer).read_text())
    assert saved["has_changes"] is False and list(saved["dependency_outputs"]) == [NEW]
    assert set(saved["module_files"]) >= {"consumer/main.tf", "echo/main.tf"}
    check("saved-plan", saved)

    report = go(harness, "apply", plan_dir=plans)
    assert report.units[NEW].status == Status.SUCCEEDED
    unit = report.units[consumer]
    assert unit.status == Status.FAILED and NOTHING_TO_APPLY not in unit.message
    assert f"saved plan is stale: the outputs of {NEW} changed since it was made" in unit.message
    assert state(harness, consumer)["serial"] == serial and report.exit_code == 1
