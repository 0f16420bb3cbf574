"""The ledger, resume, the report and masking, through run() with a fake engine (a real
implementation of the Engine protocol, no processes) and fake credentials."""

import json
import os
import stat
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from refarch.engines import EngineResult
from refarch.errors import RefarchWarning, UsageError, WrongAccount
from refarch.events import UnitRetried
from refarch.exec.process import ProcessResult
from refarch.models import Dependency, Status
from refarch.runner.ledger import Ledger, find_ledger, load_run, past_durations, read_events
from refarch.runner.report import write_report
from refarch.runner.run import RunOptions, run
from refarch.runner.unit import UnitAccess
from tests.unit.test_scheduler import make_plan

SPEC = {
    "security/iam": ("security", 1, []),
    "dev/vpc": ("dev", 2, []),
    "dev/db": ("dev", 2, ["dev/vpc"]),
    "dev/app": ("dev", 2, ["dev/db"]),
}


class FakeEngine:
    """Scripted results per unit: a list of (returncode, stderr) per attempt, then success."""

    name = "fake"
    resolves_dependencies = False

    def __init__(self, script=None, outputs=None):
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.outputs = outputs or {}
        self.jobs, self.reads = [], []
        self._lock = threading.Lock()

    def execute(self, job):
        with self._lock:
            self.jobs.append(job)
            steps = self.script.get(job.unit.path, [])
            code, stderr = steps.pop(0) if steps else (0, "")
        job.on_line("stdout", f"running {job.unit.path} with password hunter2-secret")
        if stderr:
            job.on_line("stderr", stderr)
        result = ProcessResult(("fake", job.action), "/", code, "", stderr, 0.0)
        outputs = self.outputs.get(job.unit.path) if code == 0 and job.action == "apply" else None
        return EngineResult(result, outputs)

    def read_outputs(self, job):
        with self._lock:
            self.reads.append(job.unit.path)
        return {"read": job.unit.path}


class FakeCredentials:
    def __init__(self, wrong=()):
        self.wrong = set(wrong)

    def for_unit(self, unit):
        if unit.path in self.wrong:
            raise WrongAccount(unit.path, "444444444444", "999999999999")
        return UnitAccess({"AWS_ACCESS_KEY_ID": f"key-{unit.account}"}, {"Account": unit.account})


def go(plan, engine, **kwargs):
    kwargs.setdefault("credentials", FakeCredentials())
    kwargs.setdefault("sleep", lambda _s: None)
    kwargs.setdefault(
        "base_env", {"PATH": "/usr/bin", "AWS_PROFILE": "caller", "AWS_WEB_IDENTITY_TOKEN_FILE": "/ci/token"}
    )
    names = ("parallelism", "fail_fast", "resume", "rerun_changed", "history")
    options = {k: kwargs.pop(k) for k in names if k in kwargs}
    return run(plan, plan.action, engine=engine, options=RunOptions(**options), **kwargs)


def test_ledger_appends_whole_lines_and_reader_skips_a_torn_one(tmp_path):
    path = tmp_path / "runs" / "r.jsonl"
    with Ledger(path, clock=lambda: 1.0) as ledger:
        ledger.write("run_start", run_id="r", action="apply")
        ledger.write("unit_start", unit="a")
    with path.open("a") as handle:
        handle.write('{"event": "unit_fin')  # a crash mid-line
    with pytest.warns(RefarchWarning, match=r"r\.jsonl:3: ledger line skipped: not a complete JSON line"):
        assert [e["event"] for e in read_events(path)] == ["run_start", "unit_start"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_line_whose_ts_is_not_a_time_is_skipped_naming_the_line(tmp_path):
    path = tmp_path / "runs" / "r.jsonl"
    with Ledger(path, clock=lambda: 1.0) as ledger:
        ledger.write("run_start", run_id="r", action="apply")
    with path.open("a") as handle:
        handle.write('{"event": "unit_finish", "unit": "a", "status": "failed", "ts": "abc"}\n')
        handle.write('{"event": "unit_start", "unit": ["a"], "ts": 2}\n')
    with pytest.warns(RefarchWarning) as caught:
        assert [e["event"] for e in read_events(path)] == ["run_start"]
    said = [str(w.message) for w in caught]
    assert "r.jsonl:2: ledger line skipped: its `ts` 'abc' is not a time" in said[0]
    assert "r.jsonl:3" in said[1] and "`unit` of a unit_start event" in said[1]


def test_an_unwritable_audit_export_is_a_clear_error(tmp_path):
    from refarch.errors import OutputNotWritten
    from refarch.runner.history import export_audit
    from refarch.runner.ledger import LocalLedgerStore

    report = go(make_plan(SPEC, root=tmp_path), FakeEngine())
    (tmp_path / "a-file").write_text("")
    with pytest.raises(
        OutputNotWritten, match=r"could not write the audit export .*a-file/out\.jsonl"
    ) as refused:
        export_audit(LocalLedgerStore(tmp_path), tmp_path / "a-file" / "out.jsonl")
    assert refused.value.exit_code == 2 and report.ok


def test_a_run_records_start_attempts_retries_and_finish(tmp_path):
    plan = make_plan(SPEC, root=tmp_path)
    engine = FakeEngine({"dev/vpc": [(1, "Error: net/http: TLS handshake timeout")]})
    events = []
    report = go(plan, engine, on_event=events.append)
    assert report.exit_code == 0 and report.ok
    ledger = read_events(report.ledger_path and find_ledger(tmp_path, report.run_id))
    kinds = [e["event"] for e in ledger]
    assert kinds[0] == "run_start" and kinds[-1] == "run_finish"
    start = ledger[0]
    assert start["units"] == list(SPEC) and start["digests"]["dev/vpc"] == "d-dev/vpc"
    assert start["identities"] == {"security": {"Account": "security"}, "dev": {"Account": "dev"}}
    assert "refarch_version" in start and "git_commit" in start
    retry = next(e for e in ledger if e["event"] == "retry")
    assert retry["unit"] == "dev/vpc" and retry["rule"] == "tls-handshake-timeout"
    assert report.units["dev/vpc"].attempts == 2
    assert report.units["dev/vpc"].retries[0].rule == "tls-handshake-timeout"
    assert sum(isinstance(e, UnitRetried) for e in events) == 1


def test_child_env_holds_the_accounts_credentials_not_the_callers(tmp_path):
    plan = make_plan(SPEC, root=tmp_path)
    engine = FakeEngine()
    go(plan, engine, extra_env=lambda unit: {"TF_VAR_db_password": "data-store-pw"})
    env = next(j.env for j in engine.jobs if j.unit.path == "dev/db")
    assert env["AWS_ACCESS_KEY_ID"] == "key-dev" and "AWS_PROFILE" not in env
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" not in env  # a CI runner's OIDC identity stays with refarch
    assert env["PATH"] == "/usr/bin" and env["TF_VAR_db_password"] == "data-store-pw"


def test_secrets_never_reach_the_log_ledger_or_report(tmp_path):
    spec = {"dev/db": ("dev", 1, [])}
    plan = make_plan(spec, root=tmp_path)
    unit = replace(plan.repo.units["dev/db"], inputs={"master_password": "input-pw-1234"})
    plan = replace(plan, repo=replace(plan.repo, units={"dev/db": unit}))
    engine = FakeEngine({"dev/db": [(1, "Error: bad input-pw-1234 and hunter2-secret")]})
    report = go(plan, engine, secrets=["hunter2-secret"])
    assert report.units["dev/db"].status == Status.FAILED
    report_file = write_report(report, tmp_path / "report.json")
    for path in (report.units["dev/db"].log_path, report.ledger_path, report_file):
        text = Path(path).read_text()
        assert "input-pw-1234" not in text and "hunter2-secret" not in text, path
        assert "***" in text or path == report.ledger_path
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_wrong_account_is_refused_before_the_engine_runs(tmp_path):
    plan = make_plan(SPEC, root=tmp_path)
    engine = FakeEngine()
    report = go(plan, engine, credentials=FakeCredentials(wrong={"dev/db"}))
    assert report.units["dev/db"].status == Status.FAILED
    assert "belongs to account 444444444444" in report.units["dev/db"].message
    assert "dev/db" not in [j.unit.path for j in engine.jobs]
    assert report.units["dev/app"].status == Status.NOT_RUN
    assert report.units["dev/app"].message == "waits for dev/db, which failed"
    assert report.exit_code == 1


def test_dependency_outputs_are_handed_over_and_read_once(tmp_path):
    spec = {
        "vpc": ("dev", 1, []),
        "db": ("dev", 1, ["vpc"]),
        "app": ("dev", 1, ["vpc", "db"]),
        "ext": ("dev", 1, []),
    }
    plan = make_plan(spec, root=tmp_path)
    units = dict(plan.repo.units)
    units["db"] = replace(units["db"], dependency_blocks=(Dependency("vpc", "vpc"),))
    units["app"] = replace(
        units["app"],
        dependency_blocks=(Dependency("vpc", "vpc"), Dependency("db", "db"), Dependency("ext", "ext")),
    )
    # `ext` is not part of the run: its outputs must be read (once), not applied
    del units["ext"]
    units["ext"] = plan.repo.units["ext"]
    plan = replace(
        plan,
        repo=replace(plan.repo, units=units),
        units={k: v for k, v in plan.units.items() if k != "ext"},
        tiers=(("vpc", "db", "app"),),
    )
    engine = FakeEngine(outputs={"vpc": {"vpc_id": "vpc-1"}})
    report = go(plan, engine)
    app = next(j for j in engine.jobs if j.unit.path == "app")
    assert app.dependency_outputs == {
        "vpc": {"vpc_id": "vpc-1"},
        "db": {"read": "db"},
        "ext": {"read": "ext"},
    }
    assert sorted(engine.reads) == ["db", "ext"]  # vpc's came from its apply
    assert sorted(report.output_reads) == ["db", "ext"]


def test_resume_reruns_only_what_did_not_succeed(tmp_path):
    plan = make_plan(SPEC, root=tmp_path)
    first = go(plan, FakeEngine({"dev/db": [(1, "Error: boom")]}))
    assert first.exit_code == 1
    engine = FakeEngine()
    second = go(plan, engine, resume="last")
    assert sorted(j.unit.path for j in engine.jobs) == ["dev/app", "dev/db"]
    assert second.units["dev/vpc"].status == Status.DONE_BEFORE
    assert second.units["dev/app"].status == Status.SUCCEEDED
    assert second.resumed_from == first.run_id and second.exit_code == 0
    # resuming the resumed run: nothing left to do
    third_engine = FakeEngine()
    third = go(plan, third_engine, resume=second.run_id)
    assert third_engine.jobs == [] and third.exit_code == 0


def test_resume_runs_the_fixed_unit_and_lists_changed_ones_that_succeeded(tmp_path):
    plan = make_plan(SPEC, root=tmp_path)
    go(plan, FakeEngine({"dev/db": [(1, "Error: boom")]}))
    # the fix: db's file changed (it failed), and a shared file changed vpc's digest (it succeeded)
    fixed = make_plan(SPEC, root=tmp_path, digests={"dev/db": "new", "dev/vpc": "new"})
    notices, engine = [], FakeEngine()
    report = go(fixed, engine, resume="last", on_event=lambda e: notices.append(getattr(e, "text", "")))
    assert sorted(j.unit.path for j in engine.jobs) == ["dev/app", "dev/db"]
    assert report.units["dev/vpc"].status == Status.DONE_BEFORE and report.exit_code == 0
    listed = [n for n in notices if "changed since they succeeded" in n]
    assert listed and "dev/vpc" in listed[0] and "--rerun-changed" in listed[0]
    # asked to: the changed unit that succeeded runs again too
    go(plan, FakeEngine({"dev/db": [(1, "Error: boom")]}))
    engine = FakeEngine()
    go(fixed, engine, resume="last", rerun_changed=True)
    assert sorted(j.unit.path for j in engine.jobs) == ["dev/app", "dev/db", "dev/vpc"]


def test_resume_last_is_the_last_run_of_the_same_action(tmp_path):
    apply_plan = make_plan(SPEC, root=tmp_path)
    failed = go(apply_plan, FakeEngine({"dev/app": [(1, "Error: boom")]}))
    go(make_plan(SPEC, root=tmp_path, action="plan"), FakeEngine())  # a plan-all after it
    engine = FakeEngine()
    report = go(apply_plan, engine, resume="last")
    assert report.resumed_from == failed.run_id
    assert [j.unit.path for j in engine.jobs] == ["dev/app"]


def test_resume_needs_an_earlier_run_of_the_same_action(tmp_path):
    plan = make_plan(SPEC, root=tmp_path)
    with pytest.raises(UsageError):
        go(plan, FakeEngine(), resume="last")
    first = go(plan, FakeEngine())
    with pytest.raises(UsageError, match="was `apply`"):
        go(make_plan(SPEC, root=tmp_path, action="destroy"), FakeEngine(), resume=first.run_id)
    with pytest.raises(UsageError, match="no run"):
        go(plan, FakeEngine(), resume="20990101T000000Z-000000")
    assert load_run(tmp_path, first.run_id).succeeded == frozenset(SPEC)


def test_report_json_lists_every_unit(tmp_path):
    plan = make_plan(SPEC, root=tmp_path)
    report = go(plan, FakeEngine({"security/iam": [(1, "Error: denied")]}))
    document = json.loads(write_report(report, tmp_path / "r.json").read_text())
    assert document["exit_code"] == 1 and document["status"] == "failed"
    statuses = {u["path"]: u["status"] for u in document["units"]}
    assert statuses == {
        "security/iam": Status.FAILED,
        "dev/vpc": Status.NOT_RUN,
        "dev/db": Status.NOT_RUN,
        "dev/app": Status.NOT_RUN,
    }
    assert document["counts"] == {Status.FAILED: 1, Status.NOT_RUN: 3}


def test_past_durations_come_from_the_newest_successful_runs_of_the_action(tmp_path):
    folder = tmp_path / ".refarch" / "runs"
    folder.mkdir(parents=True)

    def ledger(name, action, finishes):
        with Ledger(folder / f"{name}.jsonl") as book:
            book.write("run_start", run_id=name, action=action)
            for unit, status, duration in finishes:
                book.write("unit_finish", unit=unit, status=status, duration=duration)

    ledger("20260101T000000Z-a", "apply", [("vpc", Status.SUCCEEDED, 30.0), ("db", Status.SUCCEEDED, 90.0)])
    ledger("20260102T000000Z-b", "apply", [("vpc", Status.SUCCEEDED, 40.0), ("db", Status.FAILED, 1.0)])
    ledger("20260103T000000Z-c", "destroy", [("vpc", Status.SUCCEEDED, 5.0)])
    assert past_durations(tmp_path, "apply") == {"vpc": 40.0, "db": 90.0}
    assert past_durations(tmp_path, "destroy") == {"vpc": 5.0}
    assert past_durations(tmp_path / "elsewhere", "apply") == {}


def test_a_second_run_is_ordered_by_the_first_runs_durations(tmp_path):
    plan = make_plan(SPEC, root=tmp_path)
    first = go(plan, FakeEngine())
    assert first.ok
    assert set(past_durations(tmp_path, "apply")) == set(SPEC)


def test_an_expired_token_is_retried_once_with_the_units_credentials_fetched_again(tmp_path):
    class RenewingCredentials(FakeCredentials):
        def __init__(self):
            super().__init__()
            self.issued = 0

        def for_unit(self, unit):
            self.issued += 1
            return UnitAccess({"AWS_ACCESS_KEY_ID": f"key-{self.issued}"}, {"Account": unit.account})

    plan = make_plan({"dev/vpc": ("dev", 2, [])}, root=tmp_path)
    expired = "Error: ExpiredToken: The security token included in the request is expired"
    engine = FakeEngine({"dev/vpc": [(1, expired), (1, expired)]})
    credentials = RenewingCredentials()
    report = go(plan, engine, credentials=credentials)
    keys = [job.env["AWS_ACCESS_KEY_ID"] for job in engine.jobs]
    assert len(keys) == 2 and keys[0] != keys[1]  # once more, with fresh credentials; then it fails
    assert report.units["dev/vpc"].status == Status.FAILED
    assert [r.rule for r in report.units["dev/vpc"].retries] == ["credentials-expired"]
