"""`refarch recover DIR`: nothing to push is a plain answer (exit 0), an unknown run a usage
error (exit 2). Pushing state back with the real Terraform is in tests/integration/test_run_faults.py."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from refarch.cli import cli
from refarch.runner.ledger import Ledger, runs_dir
from tests.unit.test_account_guard import make_repo

RUN_ID = "20261130T000000Z-abc123"


def past_run(root: Path, *events: tuple[str, dict[str, object]]) -> None:
    with Ledger(runs_dir(root) / f"{RUN_ID}.jsonl") as ledger:
        ledger.write("run_start", run_id=RUN_ID, action="apply", units=["dev/us-west-2/vpc"])
        for name, fields in events:
            ledger.write(name, **fields)


def test_recover_with_nothing_to_push_says_so_and_succeeds(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "live")
    gone = root / ".refarch" / "recovery" / RUN_ID / "vpc" / "errored.tfstate"  # pushed already
    past_run(root, ("state_rescued", {"unit": "dev/us-west-2/vpc", "files": [str(gone)]}))
    for ref in ("last", RUN_ID):
        result = CliRunner().invoke(cli, ["recover", str(root), "--run", ref], env={"CI": "true"})
        assert result.exit_code == 0, result.output
        assert f"nothing to push: run {ref} moved no state aside" in result.output


def test_recover_of_an_unknown_run_is_a_usage_error_naming_the_known_ones(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "live")
    past_run(root)
    result = CliRunner().invoke(cli, ["recover", str(root), "--run", "no-such-run"], env={"CI": "true"})
    assert result.exit_code == 2, result.output
    assert "no run 'no-such-run'" in result.output and RUN_ID in result.output
    assert "Traceback" not in result.output
