"""errors { retry / ignore } blocks and the older retry attributes, honoured per unit by
refarch's retry engine; Terragrunt's own automatic retry turned off so retries never multiply."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from refarch import load_repo, plan
from refarch.engines.terragrunt import TerragruntEngine
from refarch.exec.process import ProcessResult
from refarch.exec.retry import DEFAULT_RULES, decide_for_unit, unit_rules
from refarch.models import ErrorRule, Status
from refarch.runner.ledger import read_events
from refarch.runner.run import RunOptions, run
from refarch.runner.unit import UnitAccess
from refarch.terragrunt_defaults import TERRAGRUNT_RETRYABLE_ERRORS

FIXTURE = Path(__file__).parent.parent / "fixtures" / "terragrunt_semantics" / "errors-blocks"
STAND_IN = Path(__file__).resolve().parents[1] / "stand_ins" / "terragrunt"


def failed(stderr: str) -> ProcessResult:
    return ProcessResult(("terragrunt", "apply"), "/x", 1, "", stderr, 0.1)


@pytest.fixture
def live(tmp_path):
    root = tmp_path / "live"
    shutil.copytree(FIXTURE, root)
    return root


def test_blocks_and_legacy_attributes_are_read_into_the_unit(live):
    repo = load_repo(live, cache=False)
    assert repo.unit("app").errors == (
        ErrorRule("retry", "transient", (".*Error: transient.*",), 4, 2.0),
        ErrorRule(
            "ignore",
            "known",
            ("!.*but fatal.*", ".*Error: known harmless.*"),
            message="the harmless one, see the runbook",
            signals={"alert": False},
        ),
    )
    assert repo.unit("legacy").errors == (
        ErrorRule("retry", "retryable_errors", ("(?s).*Error: old style.*",), 2, 7.0),
    )
    assert repo.unit("defaults-only").errors[0].patterns == TERRAGRUNT_RETRYABLE_ERRORS
    assert repo.unit("defaults-only").errors[0].max_attempts == 5
    cached = load_repo(live)  # through the on-disk cache, twice
    assert load_repo(live).unit("app").errors == cached.unit("app").errors == repo.unit("app").errors


def test_unit_rules_put_the_units_blocks_first_and_replace_terragrunts_defaults():
    own = (ErrorRule("retry", "transient", (".*Error: transient.*",), 4, 2.0),)
    rules = unit_rules(DEFAULT_RULES, own)
    assert rules.retry[0].name == "errors.retry.transient"
    assert not any(r.origin == "terragrunt" for r in rules.retry)
    assert any(r.name == "state-lock" for r in rules.retry)  # refarch's own rules stay
    assert unit_rules(DEFAULT_RULES, ()).retry == DEFAULT_RULES

    decision = decide_for_unit(rules, failed("Error: transient\nblip"), 1)
    assert decision.retry and decision.delay == 2.0 and decision.rule is rules.retry[0]
    assert not decide_for_unit(rules, failed("Error: transient"), 4).retry  # 4 attempts in all


def test_ignore_blocks_match_as_terragrunt_does():
    rules = unit_rules(
        DEFAULT_RULES,
        (
            ErrorRule(
                "ignore",
                "known",
                ("!.*but fatal.*", ".*Error: known harmless.*"),
                message="m",
                signals={"a": 1},
            ),
        ),
    )
    ignored = decide_for_unit(rules, failed("\x1b[31mError:\x1b[0m known   harmless\n thing"), 1)
    assert ignored.ignored and not ignored.retry
    assert ignored.reason == "error ignored by errors.ignore.known: m" and ignored.signals == {"a": 1}
    assert not decide_for_unit(rules, failed("Error: known harmless but fatal"), 1).ignored
    assert not decide_for_unit(
        rules, ProcessResult(("t",), "/x", 0, "Error: known harmless", "", 0.1), 1
    ).ignored


class Credentials:
    def for_unit(self, unit):
        return UnitAccess({"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "fake"}, {"Account": "1"})


def run_unit(live, tmp_path, unit, behaviour, version="0.67.16"):
    record = tmp_path / "calls.jsonl"
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"units": {unit: behaviour}}))
    env = {
        "PATH": os.environ["PATH"],
        "STANDIN_TG_RECORD": str(record),
        "STANDIN_TG_SCRIPT": str(script),
        "STANDIN_TG_VERSION": version,
    }
    sleeps: list[float] = []
    report = run(
        plan(load_repo(live, cache=False), "apply", include=[unit], ignore_dependencies=True),
        "apply",
        engine=TerragruntEngine(binary=str(STAND_IN)),
        credentials=Credentials(),
        base_env=env,
        sleep=sleeps.append,
        options=RunOptions(history=False),
    )
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return report.units[unit], sleeps, calls


def test_a_retry_block_retries_its_errors_with_its_sleep(live, tmp_path):
    unit, sleeps, calls = run_unit(
        live, tmp_path, "app", {"fail_times": 3, "stderr": "Error: transient glitch"}
    )
    assert unit.status == Status.SUCCEEDED and unit.attempts == 4
    assert sleeps == [2.0, 2.0, 2.0]
    assert [r.rule for r in unit.retries] == ["errors.retry.transient"] * 3
    assert len(calls) == 4


def test_an_ignore_block_makes_the_unit_succeed_with_its_message(live, tmp_path):
    unit, sleeps, _ = run_unit(live, tmp_path, "app", {"fail_times": 9, "stderr": "Error: known harmless"})
    assert unit.status == Status.SUCCEEDED and unit.attempts == 1 and sleeps == []
    assert (
        unit.message
        == 'error ignored by errors.ignore.known: the harmless one, see the runbook; signals {"alert": false}'
    )
    (ledger,) = (live / ".refarch" / "runs").glob("*.jsonl")
    (event,) = [e for e in read_events(ledger) if e["event"] == "error_ignored"]
    assert event["unit"] == "app" and event["signals"] == {"alert": False}


def test_legacy_attributes_give_up_after_their_attempts(live, tmp_path):
    unit, sleeps, _ = run_unit(live, tmp_path, "legacy", {"fail_times": 9, "stderr": "Error: old style"})
    assert unit.status == Status.FAILED and unit.attempts == 2 and sleeps == [7.0]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.67.16", {"TERRAGRUNT_NO_AUTO_RETRY": "true", "TERRAGRUNT_AUTO_RETRY": "false"}),
        ("1.0.2", {"TG_NO_AUTO_RETRY": "true"}),
    ],
)
def test_terragrunts_own_retry_is_off_so_attempts_never_multiply(live, tmp_path, version, expected):
    transient = {
        "fail_times": 2,
        "transient": True,
        "stderr": "Error installing provider: TLS handshake timeout",
    }
    unit, _, calls = run_unit(live, tmp_path, "defaults-only", transient, version)
    assert unit.status == Status.SUCCEEDED and unit.attempts == 3
    assert len(calls) == 3  # one terragrunt run per refarch attempt: Terragrunt did not retry
    assert all(expected.items() <= call["env"].items() for call in calls)
