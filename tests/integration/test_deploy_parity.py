"""The library equals the CLI: each run verb (apply, plan-all, output, destroy) run through
`refarch VERB` and through `refarch.deploy` on the same repo selects the same plan, ends each
unit the same way and writes the same kinds of ledger events. The terragrunt stand-in on
PATH, STS on the moto server (11-21 s on 2 shared cores)."""

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

import refarch
from refarch.aws import AwsSessions
from refarch.cli import cli
from refarch.settings import Settings
from tests.conftest import ACCOUNTS

pytestmark = pytest.mark.integration

STAND_IN = Path(__file__).resolve().parents[1] / "stand_ins" / "terragrunt"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "live"
VERBS = (("apply", "apply"), ("plan", "plan-all"), ("output", "output"), ("destroy", "destroy"))
# flags of every verb, and the same as request fields
LEFT_OUT = ("prod/*", "stage/*", "dev/us-east-1/app")
FLAGS = ("--non-interactive", "-j", "3", *(f"--exclude={p}" for p in LEFT_OUT), "--feature", "tier=gold")
FIELDS = {
    "non_interactive": True,
    "parallelism": 3,
    "exclude": LEFT_OUT,
    "features": {"tier": "gold"},
}


@pytest.fixture
def live(tmp_path, moto_server, monkeypatch):
    """A copy of the live repo, the stand-in first on PATH, credentials for moto only."""
    root = tmp_path / "live"
    shutil.copytree(FIXTURE, root)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "terragrunt").symlink_to(STAND_IN)
    script = tmp_path / "script.json"
    script.write_text("{}")
    for name in [n for n in os.environ if n.startswith(("AWS_", "STANDIN_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "STANDIN_TG_RECORD": str(tmp_path / "calls.jsonl"),
        "STANDIN_TG_SCRIPT": str(script),
    }.items():
        monkeypatch.setenv(name, value)
    # what apply's preflight finds referenced: the KMS admin user
    iam = AwsSessions(Settings(endpoint_url=moto_server.endpoint_url)).client(
        "iam", ACCOUNTS["security"], account_name="security"
    )
    iam.create_user(UserName="kms-admin")
    return root


def ledger(path):
    """What a run's ledger says, without times and ids: its plan and its event kinds by unit."""
    events = [json.loads(line) for line in Path(path).read_text().splitlines()]
    start = next(e for e in events if e["event"] == "run_start")
    kinds = Counter((e["event"], e.get("unit")) for e in events)
    return {"action": start["action"], "units": sorted(start["units"]), "digests": start["digests"]}, kinds


def test_each_run_verb_is_the_same_through_the_cli_and_the_library(live, tmp_path):
    for action, verb in VERBS:
        report_file = tmp_path / f"{verb}.json"
        # a destroy leaving the excluded unit without what it needs says so, explicitly
        broken = ("--allow-broken-dependents",) if verb == "destroy" else ()
        shown = CliRunner().invoke(cli, [verb, str(live), *FLAGS, *broken, "--report", str(report_file)])
        assert shown.exit_code == 0, shown.output
        by_cli = json.loads(report_file.read_text())

        library_file = tmp_path / f"{verb}-library.json"
        request = refarch.DeployRequest(
            live, action, allow_broken_dependents=bool(broken), report_path=library_file, **FIELDS
        )
        result = refarch.deploy(request)
        assert result.plan is not None and result.report is not None and result.exit_code == 0
        by_library = result.report
        written = json.loads(library_file.read_text())  # --report is the job's, not the CLI's
        assert [u["status"] for u in written["units"]] == [u["status"] for u in by_cli["units"]], verb

        assert {u["path"]: u["status"] for u in by_cli["units"]} == {
            path: str(unit.status) for path, unit in by_library.units.items()
        }, verb
        assert by_library.units and "dev/us-east-1/app" not in by_library.units
        if verb == "output":  # stdout holds the outputs' JSON only
            assert by_library.outputs and json.loads(shown.stdout) == by_library.outputs
        plan_cli, kinds_cli = ledger(by_cli["ledger"])
        plan_library, kinds_library = ledger(by_library.ledger_path)
        assert plan_cli == plan_library and plan_library["units"] == sorted(result.plan.units), verb
        assert kinds_cli == kinds_library, verb
