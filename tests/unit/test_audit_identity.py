"""Who ran it: role session names after the run and its caller (CloudTrail), the CI's own
variables, `--since`, and the history and audit export over the local ledgers."""

import json
import re

import pytest

from refarch.aws import role_session_name
from refarch.errors import UsageError
from refarch.runner.history import export_audit, history, parse_since
from refarch.runner.ledger import LocalLedgerStore, ci_context
from tests.unit.test_aws import ROLE, fake_sessions
from tests.unit.test_ledger import SPEC, FakeEngine, go
from tests.unit.test_scheduler import make_plan

RUN = "20261130T111600Z-abc123"


def test_role_sessions_are_named_after_the_run_and_caller_within_awss_limits():
    assert role_session_name(RUN, "octocat") == f"refarch-{RUN}-octocat"
    long = role_session_name(RUN, "someone with spaces/and:colons" * 3)
    assert (
        len(long) == 64 and re.fullmatch(r"[\w+=,.@-]+", long) and long.startswith(f"refarch-{RUN}-someone")
    )
    assert role_session_name(None, None) == "refarch"


def test_assumed_roles_and_their_renewals_carry_the_runs_session_name():
    sessions, clock, sts = fake_sessions()
    sessions.credentials_env("444444444444", role_arn=ROLE)
    assert sts.calls[-1]["RoleSessionName"] == "refarch"  # before any run names them
    name = sessions.name_sessions(RUN, "alice@example.com")
    sessions.credentials_env("444444444444", role_arn="arn:aws:iam::444444444444:role/other")
    assert sts.calls[-1]["RoleSessionName"] == name == f"refarch-{RUN}-alice@example.com"
    clock.advance(minutes=55)  # the first role's credentials are renewed: under the run's name now
    sessions.credentials_env("444444444444", role_arn=ROLE)
    assert sts.calls[-1]["RoleArn"] == ROLE and sts.calls[-1]["RoleSessionName"] == name


def test_ci_context_reads_github_and_gitlab_variables():
    github = ci_context(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_ACTOR": "octocat",
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_REPOSITORY": "acme/live",
            "GITHUB_RUN_ID": "7",
            "GITHUB_REF_NAME": "main",
        }
    )
    assert github == {
        "ci": "github",
        "actor": "octocat",
        "job_url": "https://github.example/acme/live/actions/runs/7",
        "branch": "main",
    }
    gitlab = ci_context({"GITLAB_CI": "true", "GITLAB_USER_LOGIN": "alice", "CI_JOB_URL": "https://gl/j/1"})
    assert gitlab == {"ci": "gitlab", "actor": "alice", "job_url": "https://gl/j/1"}
    assert ci_context({"PATH": "/usr/bin"}) == {}


def test_since_takes_dates_times_and_ages():
    now = 1_800_000_000.0
    assert parse_since("2h", now) == now - 7200
    assert parse_since("7d", now) == now - 7 * 86400
    assert parse_since("2026-11-30") == parse_since("2026-11-30T00:00:00Z")
    assert parse_since(None) is None
    with pytest.raises(UsageError, match="neither a date/time nor an age"):
        parse_since("yesterday")


def test_history_and_audit_export_read_the_local_ledgers(tmp_path):
    plan = make_plan(SPEC, root=tmp_path)
    first = go(plan, FakeEngine({"dev/db": [(1, "Error: boom")]}))
    second = go(plan, FakeEngine(), resume="last")
    store = LocalLedgerStore(tmp_path)
    rows = history(store, unit="dev/db")
    assert [(r.run_id, r.status, r.action, r.digest) for r in rows] == [
        (first.run_id, "failed", "apply", "d-dev/db"),
        (second.run_id, "succeeded", "apply", "d-dev/db"),
    ]
    assert rows[0].actor and rows[0].host  # the local user and host outside CI
    out = tmp_path / "audit.jsonl"
    count = export_audit(store, out)
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert count == len(events) and {e["run_id"] for e in events} == {first.run_id, second.run_id}
    assert history(store, since=parse_since("2999-01-01")) == []


def test_history_and_audit_export_commands(tmp_path):
    from click.testing import CliRunner

    from refarch.cli import cli
    from refarch.runner.ledger import Ledger, runs_dir

    with Ledger(runs_dir(tmp_path) / f"{RUN}.jsonl") as ledger:
        ledger.write("run_start", run_id=RUN, action="apply", units=["dev/vpc"], digests={"dev/vpc": "d1"})
        ledger.write("unit_finish", unit="dev/vpc", status="succeeded", duration=1.5, account="dev")
        ledger.write("run_finish", exit_code=0)
    shown = CliRunner().invoke(cli, ["history", str(tmp_path), "--json"])
    assert shown.exit_code == 0, shown.output
    (row,) = [json.loads(line) for line in shown.output.splitlines()]
    assert (row["run_id"], row["unit"], row["status"], row["digest"]) == (RUN, "dev/vpc", "succeeded", "d1")
    table = CliRunner().invoke(cli, ["history", str(tmp_path), "--unit", "dev/vpc"], env={"CI": "true"})
    assert table.exit_code == 0 and RUN in table.output and "succeeded" in table.output
    out = tmp_path / "export" / "audit.jsonl"
    exported = CliRunner().invoke(cli, ["audit", "export", str(tmp_path), "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert [json.loads(line)["event"] for line in out.read_text().splitlines()] == [
        "run_start",
        "unit_finish",
        "run_finish",
    ]
    bad = CliRunner().invoke(cli, ["history", str(tmp_path), "--since", "soon"])
    assert bad.exit_code == 2 and "neither a date/time nor an age" in bad.output
