"""The shared ledger ([ledger] backend = "dynamodb") and the account locks, against the moto
server: bootstrap makes the table and log bucket; runs from two clones share one history;
`--resume` continues on another runner; a second run of a locked account is refused.

The units run through the fake engine of tests/unit/test_ledger.py (no Terraform): what is
under test is the record, the locks and the resume, not the tool."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from refarch.aws import AwsSessions
from refarch.config import load_repo
from refarch.errors import ConfigError, RefarchWarning, UsageError
from refarch.jobs.bootstrap import bootstrap
from refarch.models import Plan, Status
from refarch.provision.backend import BucketSpec
from refarch.provision.ledger_table import ensure_ledger
from refarch.runner.account_locks import AccountBusy, AccountLockLost, AccountLocks, process_identity
from refarch.runner.history import export_audit, history, open_store, parse_since
from refarch.runner.ledger import load_run, read_events
from refarch.runner.ledger_dynamodb import DynamoLedgerStore, LedgerConfig, ledger_place, store_for
from refarch.runner.run import RunOptions, run
from refarch.settings import Settings, load_settings
from tests.conftest import ACCOUNTS, FIXTURES, MotoServer
from tests.unit.test_contracts import check
from tests.unit.test_ledger import SPEC, FakeCredentials, FakeEngine
from tests.unit.test_scheduler import make_plan

pytestmark = pytest.mark.integration

TABLE = "refarch-ledger"
BUCKET = "refarch-ledger-caller-us-east-1"  # the default name when the ledger is the caller's account
CI_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin"),
    "GITHUB_ACTIONS": "true",
    "GITHUB_ACTOR": "octocat",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/live",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_REF_NAME": "main",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
}


def shared_settings(endpoint: str, **ledger: Any) -> Settings:
    return Settings(
        endpoint_url=endpoint,
        sections={"ledger": {"backend": "dynamodb", "repo": "github.com/acme/live", **ledger}},
    )


def make_ledger(settings: Settings) -> AwsSessions:
    sessions = AwsSessions(settings)
    results = ensure_ledger(
        sessions.client("dynamodb"),
        sessions.client("s3"),
        table=TABLE,
        bucket=BucketSpec(BUCKET, "us-east-1", "123456789012", enforce_tls=False),
        wait_delay=0,
    )
    assert [r.status for r in results] == ["created", "created"]
    return sessions


def clone_plan(root: Path, settings: Settings, **kwargs: Any) -> Plan:
    """The same units in another clone (another folder, as another runner has it)."""
    plan = make_plan(SPEC, root=root, **kwargs)
    return replace(plan, repo=replace(plan.repo, settings=settings))


def go(plan: Plan, engine: FakeEngine, sessions: AwsSessions | None = None, **options: Any) -> Any:
    return run(
        plan,
        plan.action,
        plan.repo.settings,
        engine=engine,
        credentials=FakeCredentials(),
        sessions=sessions,
        sleep=lambda _s: None,
        base_env=CI_ENV,
        options=RunOptions(**options),
    )


@pytest.fixture
def settings(moto_server: MotoServer) -> Settings:
    return shared_settings(moto_server.endpoint_url)


def test_two_clones_share_one_history_and_resume_continues_on_the_other_runner(
    tmp_path: Path, settings: Settings
) -> None:
    sessions = make_ledger(settings)
    first_runner = clone_plan(tmp_path / "runner-1" / "live", settings)
    failing = FakeEngine({"dev/db": [(1, "Error: creating DB instance: InvalidParameterValue")]})
    first = go(first_runner, failing, sessions)
    assert first.units["dev/db"].status == Status.FAILED and first.exit_code == 1

    # Another runner, another clone: nothing of the first run on its disk.
    second_runner = clone_plan(tmp_path / "runner-2" / "live", settings)
    assert not (second_runner.repo.root / ".refarch").exists()
    engine = FakeEngine()
    resumed = go(second_runner, engine, sessions, resume="last")
    assert resumed.ok and resumed.resumed_from == first.run_id
    assert sorted(j.unit.path for j in engine.jobs) == ["dev/app", "dev/db"]  # only what did not succeed
    assert resumed.units["dev/vpc"].status == Status.DONE_BEFORE

    # One history, read from either clone: every unit of both runs, who ran it and where.
    store = store_for(second_runner.repo, settings)
    assert store.run_ids() == [first.run_id, resumed.run_id]
    rows = history(store)
    assert [(r.run_id, r.unit, r.status) for r in rows if r.unit == "dev/db"] == [
        (first.run_id, "dev/db", "failed"),
        (resumed.run_id, "dev/db", "succeeded"),
    ]
    row = rows[0]
    assert row.actor == "octocat" and row.job_url == "https://github.com/acme/live/actions/runs/4242"
    assert row.caller == "arn:aws:sts::123456789012:user/moto"  # the base identity
    assert row.commit == CI_ENV["GITHUB_SHA"] and row.branch == "main" and row.digest == f"d-{row.unit}"
    assert [r.status for r in history(store, unit="dev/app")] == ["not_run", "succeeded"]
    assert history(store, since=parse_since("1h")) == rows

    # The unit logs (masked) are in S3, encrypted; the event says where.
    start = store.events(first.run_id)[0]
    assert start["who"]["session_name"] == f"refarch-{first.run_id}-octocat"
    finish = next(
        e for e in store.events(first.run_id) if e["event"] == "unit_finish" and e["unit"] == "dev/db"
    )
    assert finish["log_uri"] == f"s3://{BUCKET}/refarch/runs/{first.run_id}/dev__db.log"
    s3 = sessions.client("s3")
    log = s3.get_object(Bucket=BUCKET, Key=f"refarch/runs/{first.run_id}/dev__db.log")
    assert log["ServerSideEncryption"] == "AES256"
    body = log["Body"].read().decode()
    assert "InvalidParameterValue" in body  # the unit's own (masked) log, as kept locally

    # Each runner keeps its own local ledger as before, with the same events.
    local = read_events(Path(first.ledger_path or ""))
    assert [e["event"] for e in local] == [e["event"] for e in store.events(first.run_id)]


def test_resume_last_is_this_jobs_last_run_not_another_jobs_newer_one(
    tmp_path: Path, settings: Settings
) -> None:
    sessions = make_ledger(settings)
    dev_job = replace(
        clone_plan(tmp_path / "a" / "live", settings),
        units={
            p: u
            for p, u in clone_plan(tmp_path / "a" / "live", settings).units.items()
            if p.startswith("dev/")
        },
    )
    security_job = replace(
        dev_job, units={"security/iam": clone_plan(tmp_path, settings).units["security/iam"]}
    )
    failed = go(dev_job, FakeEngine({"dev/app": [(1, "Error: boom")]}), sessions)
    newer = go(
        replace(security_job, repo=replace(security_job.repo, root=tmp_path / "b" / "live")),
        FakeEngine(),
        sessions,
    )
    assert failed.run_id < newer.run_id
    engine = FakeEngine()
    rerun = go(
        replace(dev_job, repo=replace(dev_job.repo, root=tmp_path / "c" / "live")),
        engine,
        sessions,
        resume="last",
    )
    assert rerun.resumed_from == failed.run_id and [j.unit.path for j in engine.jobs] == ["dev/app"]
    with pytest.raises(UsageError, match="no earlier apply of these 2 unit"):
        go(
            replace(dev_job, units=dict(list(dev_job.units.items())[:2])),
            FakeEngine(),
            sessions,
            resume="last",
        )


def test_audit_export_writes_every_event_as_json_lines_atomically(tmp_path: Path, settings: Settings) -> None:
    sessions = make_ledger(settings)
    report = go(clone_plan(tmp_path / "live", settings), FakeEngine(), sessions)
    store = store_for(clone_plan(tmp_path / "live", settings).repo, settings)
    out = tmp_path / "backup" / "audit.jsonl"
    count = export_audit(store, out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert count == len(lines) == len(store.events(report.run_id))
    assert {line["run_id"] for line in lines} == {report.run_id}
    assert lines[0]["event"] == "run_start" and lines[-1]["event"] == "run_finish"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_an_event_over_the_item_limit_is_split_and_read_back_whole(
    tmp_path: Path, settings: Settings
) -> None:
    """A run_start of 2,600 units (about 700 KB of JSON, over DynamoDB's 400 KB an item) is
    stored in parts and read back as one event: history and --resume see who and what."""
    make_ledger(settings)
    store = store_for(clone_plan(tmp_path / "live", settings).repo, settings)
    assert isinstance(store, DynamoLedgerStore)
    units = [f"prod/us-east-1/service-{n:04d}/" + "x" * 150 for n in range(2600)]
    run_id = "20261201T100000000Z-big001"
    with store.open(run_id) as ledger:
        ledger.write(
            "run_start", run_id=run_id, action="apply", units=units, digests=dict.fromkeys(units, "d" * 64)
        )
        ledger.write("unit_finish", unit=units[-1], status="succeeded", action="apply", account="prod")
        assert ledger.failed == 0
    events = store.events(run_id)
    assert [e["event"] for e in events] == ["run_start", "unit_finish"]
    assert events[0]["units"] == units and len(json.dumps(events[0])) > 400_000
    past = load_run(tmp_path / "live", run_id, store=store)
    assert past.units == tuple(units) and past.statuses == {units[-1]: "succeeded"}
    assert [r.unit for r in history(store)] == [units[-1]]


def test_malformed_items_in_the_shared_table_are_skipped_naming_table_and_key(
    tmp_path: Path, settings: Settings
) -> None:
    sessions = make_ledger(settings)
    report = go(clone_plan(tmp_path / "live", settings), FakeEngine(), sessions)
    store = store_for(clone_plan(tmp_path / "live", settings).repo, settings)
    dynamodb = sessions.client("dynamodb")
    run_pk = {"S": f"run#{report.run_id}"}
    bad = [
        {"pk": run_pk, "sk": {"S": "000000900"}, "body": {"S": "abc"}},
        {
            "pk": run_pk,
            "sk": {"S": "000000901"},
            "body": {"S": json.dumps({"event": "unit_finish", "unit": "u", "status": "failed", "ts": "abc"})},
        },
        {"pk": run_pk, "sk": {"S": "000000902"}, "body": {"N": "7"}},
        {"pk": run_pk, "sk": {"S": "000000903"}, "body": {"S": "{"}, "parts": {"N": "3"}},
        {
            "pk": run_pk,
            "sk": {"S": "000000904"},
            "body": {"S": json.dumps({"event": "unit_start", "ts": 1, "unit": []})},
        },
        {"pk": {"S": "repo#github.com/acme/live"}, "sk": {"S": "run#zzz"}, "ts": {"S": "abc"}},
    ]
    for item in bad:
        dynamodb.put_item(TableName=TABLE, Item=item)
    with pytest.warns(RefarchWarning) as caught:
        rows = history(store)
        past = load_run(tmp_path / "live", "last", store=store)
    assert past.run_id == report.run_id and {r.run_id for r in rows} == {report.run_id}
    said = [str(w.message) for w in caught]
    assert any(
        f"table {TABLE}, item pk='run#{report.run_id}' sk='000000901'" in m and "`ts` 'abc'" in m
        for m in said
    )
    assert any("sk='000000903'" in m and "3 parts, 2 of them missing" in m for m in said)
    assert any("sk='run#zzz'" in m and "run index item" in m for m in said)
    assert len({m for m in said if "sk='00000090" in m}) == 5


def test_since_values_are_checked() -> None:
    with pytest.raises(UsageError, match="--since is empty"):
        parse_since("  ")
    for text in ("abc", "99999999999999d", "2026-13-01"):
        with pytest.raises(UsageError, match="neither a date/time nor an age"):
            parse_since(text)
    assert parse_since("1w", now=1e6) == 1e6 - 7 * 86400 and parse_since("0001-01-01") == 0.0


def test_a_run_without_the_table_is_refused_before_anything_starts(
    tmp_path: Path, settings: Settings
) -> None:
    engine = FakeEngine()
    with pytest.raises(ConfigError, match=r"refarch bootstrap DIR --only ledger"):
        go(clone_plan(tmp_path / "live", settings), engine, AwsSessions(settings))
    assert engine.jobs == []


# -- account locks -----------------------------------------------------------------------


def lock_items(sessions: AwsSessions) -> list[dict[str, Any]]:
    items = sessions.client("dynamodb").scan(TableName=TABLE)["Items"]
    return [i for i in items if i["pk"]["S"].startswith("lock#")]


def hold(sessions: AwsSessions, key: str, **holder: Any) -> None:
    item = {
        "pk": {"S": f"lock#{key}"},
        "sk": {"S": "lock"},
        "account": {"S": key.removeprefix("name:")},
        "run_id": {"S": holder.get("run_id", "20261130T100000Z-other1")},
        "job_url": {"S": holder.get("job_url", "https://ci.example/jobs/7")},
        "host": {"S": holder.get("host", "runner-9")},
        "pid": {"N": str(holder.get("pid", 4242))},
        "since": {"S": "2026-11-30T10:00:00+00:00"},
        "heartbeat": {"N": repr(holder.get("heartbeat", 1e12))},
        **{k: {"S": holder[k]} for k in ("boot_id", "pid_ns", "started") if k in holder},
    }
    sessions.client("dynamodb").put_item(TableName=TABLE, Item=item)


def test_an_account_being_applied_is_refused_at_once_naming_the_holder(
    tmp_path: Path, settings: Settings
) -> None:
    sessions = make_ledger(settings)
    hold(sessions, "name:dev")  # a live run on another runner (fresh heartbeat)
    engine = FakeEngine()
    with pytest.raises(AccountBusy) as refused:
        go(clone_plan(tmp_path / "live", settings), engine, sessions)
    assert refused.value.exit_code == 2
    text = str(refused.value)
    assert "account dev" in text and "run 20261130T100000Z-other1" in text
    assert "job https://ci.example/jobs/7" in text and "host runner-9" in text and "since 2026-11-30" in text
    assert engine.jobs == []
    # All or none: the security lock it took first was given back; the holder's stays.
    assert [i["pk"]["S"] for i in lock_items(sessions)] == ["lock#name:dev"]
    # plan-all takes no account lock.
    assert go(clone_plan(tmp_path / "live", settings, action="plan"), FakeEngine(), sessions).ok


def test_account_locks_are_held_while_units_run_and_released_even_after_a_failure(
    tmp_path: Path, settings: Settings
) -> None:
    sessions = make_ledger(settings)
    seen: list[list[str]] = []

    class Watching(FakeEngine):
        def execute(self, job: Any) -> Any:
            seen.append(sorted(i["account"]["S"] for i in lock_items(sessions)))
            return super().execute(job)

    report = go(
        clone_plan(tmp_path / "live", settings), Watching({"dev/vpc": [(1, "Error: boom")]}), sessions
    )
    assert report.exit_code == 1
    assert seen and all(accounts == ["dev", "security"] for accounts in seen)
    assert lock_items(sessions) == []


def test_a_dead_runs_lock_is_released_with_a_notice(tmp_path: Path, settings: Settings) -> None:
    sessions = make_ledger(settings)
    hold(sessions, "name:dev", heartbeat=1000.0, host="gone-runner")  # silent since 1970
    report = go(clone_plan(tmp_path / "live", settings), FakeEngine(), sessions)
    assert report.ok
    notices = [e["text"] for e in read_events(Path(report.ledger_path or "")) if e["event"] == "notice"]
    assert len(notices) == 1
    assert "released the lock on account dev that run 20261130T100000Z-other1 left" in notices[0]
    assert "no heartbeat for" in notices[0]
    assert lock_items(sessions) == []


def test_lock_of_a_gone_process_on_this_host_is_dead_a_live_one_is_not(settings: Settings) -> None:
    sessions = make_ledger(settings)
    dynamodb = sessions.client("dynamodb")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine = AccountLocks(dynamodb, TABLE, run_id="r-1", expiry=900, host="this-host")  # real pid checks
    hold(sessions, "111111111111", host="this-host", pid=dead.pid, run_id="r-dead", **process_identity())
    notices = mine.acquire({"111111111111": "security"})
    assert notices and f"its process {dead.pid} on this host is gone" in notices[0]

    other = AccountLocks(dynamodb, TABLE, run_id="r-2", expiry=900, host="this-host")  # r-1: this pid
    with pytest.raises(AccountBusy, match="run r-1"):
        other.acquire({"111111111111": "security"})
    late = AccountLocks(dynamodb, TABLE, run_id="r-3", expiry=900, host="elsewhere", clock=lambda: 2e9)
    mine.heartbeat()  # renewed: still alive for a runner on another host
    with pytest.raises(AccountBusy):
        AccountLocks(dynamodb, TABLE, run_id="r-4", expiry=900, host="elsewhere").acquire(
            {"111111111111": "x"}
        )
    assert "no heartbeat" in late.acquire({"111111111111": "security"})[0]  # 2e9: long after the beat
    mine.release()  # not its lock any more: the new holder's stays
    assert [i["run_id"]["S"] for i in lock_items(sessions)] == ["r-3"]


def test_a_live_holder_in_another_pid_namespace_or_boot_is_not_judged_by_its_pid(
    settings: Settings,
) -> None:
    """Same host name, a pid that is gone here: dead only in this boot and pid namespace,
    and only if the pid is not another process now (its start time)."""
    sessions = make_ledger(settings)
    dynamodb = sessions.client("dynamodb")
    me = process_identity()
    assert me["boot_id"] and me["started"]
    mine = AccountLocks(dynamodb, TABLE, run_id="r-1", expiry=900, host="this-host", alive=lambda _p: False)
    for other in ({"pid_ns": "pid:[1]"}, {"boot_id": "another-boot"}, {"pid_ns": "", "boot_id": ""}):
        hold(sessions, "111111111111", host="this-host", run_id="r-live", **{**me, **other})
        with pytest.raises(AccountBusy, match="run r-live"):
            mine.acquire({"111111111111": "security"})
    reused = AccountLocks(dynamodb, TABLE, run_id="r-2", expiry=900, host="this-host")
    hold(
        sessions, "111111111111", host="this-host", pid=os.getpid(), run_id="r-old", **{**me, "started": "1"}
    )
    notices = reused.acquire({"111111111111": "security"})  # our pid, a process that started later
    assert "the pid is another process's now" in notices[0]
    assert reused.replaced[0].proven and reused.proven_dead("r-old")
    holder = reused.holder("111111111111") or {}
    assert {k: holder[k] for k in me} == me and holder["pid"] == os.getpid()


def test_a_run_that_lost_its_lock_starts_no_more_units_and_says_so(
    tmp_path: Path, settings: Settings
) -> None:
    """Fencing: before each unit the run renews its account lock with a conditional write.
    Another run takes the dev lock while dev/vpc runs: dev/db and dev/app never start."""
    sessions = make_ledger(settings)

    class Stolen(FakeEngine):
        def execute(self, job: Any) -> Any:
            if job.unit.path == "dev/vpc":  # the lock expired while this run was paused; taken
                hold(sessions, "name:dev", run_id="20261130T120000Z-newer", host="runner-2")
            return super().execute(job)

    engine = Stolen()
    events: list[Any] = []
    report = run(
        clone_plan(tmp_path / "live", settings),
        "apply",
        settings,
        engine=engine,
        credentials=FakeCredentials(),
        sessions=sessions,
        sleep=lambda _s: None,
        base_env=CI_ENV,
        options=RunOptions(parallelism=1),
        on_event=events.append,
    )
    assert report.exit_code == 1
    assert "dev/db" not in [j.unit.path for j in engine.jobs]
    assert report.units["dev/db"].status == Status.NOT_RUN
    assert "lost the lock on account dev" in report.units["dev/db"].message
    lost = [e for e in read_events(Path(report.ledger_path or "")) if e["event"] == "account_lock_lost"]
    assert [(e["account"], e["unit"]) for e in lost] == [("dev", "dev/db")]
    assert "run 20261130T120000Z-newer (host runner-2) holds it now" in lost[0]["reason"]
    check("ledger-event", lost[0])
    shown = [e for e in events if type(e).__name__ == "AccountLockTrouble"]
    assert shown and shown[0].lost and shown[0].unit == "dev/db"
    assert [i["run_id"]["S"] for i in lock_items(sessions)] == ["20261130T120000Z-newer"]  # not ours to free


def test_resume_of_a_run_whose_lock_only_expired_leaves_its_state_locks_alone(
    tmp_path: Path, settings: Settings
) -> None:
    """The run being resumed was silent past the expiry (paused, not known dead): its locks
    are taken, but nothing it may still hold is forced; the run says so."""
    sessions = make_ledger(settings)
    first = go(
        clone_plan(tmp_path / "runner-1" / "live", settings),
        FakeEngine({"dev/db": [(1, "Error: x")]}),
        sessions,
    )
    hold(sessions, "name:dev", run_id=first.run_id, heartbeat=1000.0, host="runner-1")  # as if still there
    resumed = go(clone_plan(tmp_path / "runner-2" / "live", settings), FakeEngine(), sessions, resume="last")
    assert resumed.ok
    notices = [e["text"] for e in read_events(Path(resumed.ledger_path or "")) if e["event"] == "notice"]
    assert any(f"run {first.run_id} may still be alive" in n for n in notices)


def test_a_malformed_lock_item_is_never_taken_and_says_which(settings: Settings) -> None:
    sessions = make_ledger(settings)
    item = {
        "pk": {"S": "lock#name:dev"},
        "sk": {"S": "lock"},
        "run_id": {"S": "r-hand"},
        "host": {"S": "this-host"},
        "pid": {"S": "not-a-pid"},
        "heartbeat": {"BOOL": True},
    }
    sessions.client("dynamodb").put_item(TableName=TABLE, Item=item)
    locks = AccountLocks(sessions.client("dynamodb"), TABLE, run_id="r-1", expiry=900, clock=lambda: 2e9)
    with pytest.warns(
        RefarchWarning, match=f"table {TABLE}, item pk='lock#name:dev' sk='lock'.*heartbeat, pid"
    ):
        with pytest.raises(AccountBusy, match="run r-hand"):
            locks.acquire({"name:dev": "dev"})


def test_a_failed_or_lost_heartbeat_is_reported_and_fences(settings: Settings) -> None:
    sessions = make_ledger(settings)
    troubles: list[tuple[str, str, bool]] = []
    mine = AccountLocks(sessions.client("dynamodb"), TABLE, run_id="r-1", expiry=900)
    mine.on_trouble = lambda *t: troubles.append(t)
    mine.acquire({"name:dev": "dev"})
    mine.confirm("name:dev")  # still ours
    hold(sessions, "name:dev", run_id="r-2")
    mine.heartbeat()
    assert troubles == [("dev", "run r-2 (host runner-9) holds it now", True)]
    with pytest.raises(AccountLockLost, match="lost the lock on account dev"):
        mine.confirm("name:dev")
    mine.release()
    assert [i["run_id"]["S"] for i in lock_items(sessions)] == ["r-2"]


# -- bootstrap ---------------------------------------------------------------------------


def test_bootstrap_makes_the_ledger_in_the_security_account_encrypted_with_pitr(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    root = tmp_path / "live"
    shutil.copytree(FIXTURES / "live", root)
    (root / "refarch.toml").write_text('[ledger]\nbackend = "dynamodb"\n', encoding="utf-8")
    settings = load_settings(root, {"AWS_ENDPOINT_URL": moto_server.endpoint_url})
    repo = load_repo(root, settings=settings, cache=False)
    sessions = AwsSessions(settings)
    record = bootstrap(repo, settings, sessions=sessions, only=("ledger",))
    made = [(r.kind, r.name, r.account_id, r.status) for r in record.results if r.kind != "dynamodb-table"]
    bucket = f"refarch-ledger-{ACCOUNTS['security']}-us-east-1"
    assert made == [
        ("ledger-table", TABLE, ACCOUNTS["security"], "created"),
        ("ledger-bucket", bucket, ACCOUNTS["security"], "created"),
    ]
    dynamodb = sessions.client("dynamodb", ACCOUNTS["security"], account_name="security")
    table = dynamodb.describe_table(TableName=TABLE)["Table"]
    assert table["SSEDescription"]["Status"] == "ENABLED"
    backups = dynamodb.describe_continuous_backups(TableName=TABLE)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    s3 = sessions.client("s3", ACCOUNTS["security"], account_name="security")
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    again = bootstrap(repo, settings, sessions=sessions, only=("ledger",))
    assert [r.status for r in again.results if r.account_id == ACCOUNTS["security"]] == ["exists", "exists"]
    place = ledger_place(repo, settings)
    assert (place.account, place.table, place.bucket) == ("security", TABLE, bucket)
    store = open_store(root, env={"AWS_ENDPOINT_URL": moto_server.endpoint_url, **os.environ})
    assert isinstance(store, DynamoLedgerStore) and store.run_ids() == []


def test_ledger_settings_are_checked() -> None:
    assert LedgerConfig.from_settings(Settings()).backend == "local"
    # refarch.settings checks [ledger] when the settings are made (file, dotted key, line)
    with pytest.raises(ConfigError, match=r'ledger.backend must be one of "local", "dynamodb"'):
        Settings(sections={"ledger": {"backend": "s3"}})
    with pytest.raises(ConfigError, match=r"unknown key ledger\.tabel"):
        Settings(sections={"ledger": {"tabel": "x"}})
    with pytest.raises(ConfigError, match=r"ledger\.lock_expiry"):
        Settings(sections={"ledger": {"lock_expiry": 5}})
