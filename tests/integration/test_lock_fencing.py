"""Fencing with real processes on the moto server: a run paused (SIGSTOP) past its account
lock's expiry loses the lock to another run, and after SIGCONT starts no more units.

The paused run is a child process running `refarch.run()` with the fake engine of
tests/unit/test_ledger.py (each unit takes 0.6 s) and a shared ledger whose lock expiry is
2 s (the settings allow 60 s at least; the ledger place is built directly here). Cost: about
8 s (the child's start, a 3 s pause, the rest of its run).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from refarch.aws import AwsSessions
from refarch.runner.account_locks import AccountLocks
from refarch.runner.ledger import read_events
from tests.conftest import MotoServer
from tests.integration.test_shared_ledger import BUCKET, TABLE, lock_items, make_ledger, shared_settings
from tests.unit.test_contracts import check

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXPIRY = 2  # seconds without a heartbeat before the lock may be taken
CHILD = f"""
import json, sys, time
from pathlib import Path
from refarch.aws import AwsSessions
from refarch.runner.ledger_dynamodb import DynamoLedgerStore, LedgerPlace
from refarch.runner.run import RunOptions, run
from refarch.settings import Settings
from tests.unit.test_ledger import FakeCredentials, FakeEngine
from tests.unit.test_scheduler import make_plan

endpoint, root, marks = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
spec = {{f"dev/u{{n}}": ("dev", 1, [f"dev/u{{n - 1}}"] if n else []) for n in range(6)}}
settings = Settings(endpoint_url=endpoint)
sessions = AwsSessions(settings)
place = LedgerPlace(None, None, "us-east-1", {TABLE!r}, {BUCKET!r}, "refarch/runs/", "acme/live", {EXPIRY})
store = DynamoLedgerStore(root, place, sessions.client("dynamodb"), sessions.client("s3"))


class Slow(FakeEngine):
    def execute(self, job):
        with marks.open("a") as out:
            out.write(f"{{job.unit.path}} {{time.time()}}\\n")
        time.sleep(0.6)
        return super().execute(job)


report = run(
    make_plan(spec, root=root), "apply", settings, engine=Slow(), credentials=FakeCredentials(),
    sessions=sessions, sleep=lambda _s: None, ledger_store=store, base_env={{"PATH": "/usr/bin:/bin"}},
    options=RunOptions(parallelism=1, history=False),
)
statuses = {{p: str(u.status) for p, u in report.units.items()}}
print(json.dumps({{"ledger": report.ledger_path, "statuses": statuses}}))
sys.exit(report.exit_code)
"""


def test_a_paused_run_past_its_heartbeat_starts_no_more_units_after_waking(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    settings = shared_settings(moto_server.endpoint_url)
    sessions = make_ledger(settings)
    marks = tmp_path / "started.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", CHILD, moto_server.endpoint_url, str(tmp_path / "live"), str(marks)]
    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (marks.exists() and marks.read_text()) and time.monotonic() < deadline:
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        child.send_signal(signal.SIGSTOP)  # a suspended laptop, a starved CI runner
        time.sleep(EXPIRY + 1.5)
        thief = AccountLocks(
            AwsSessions(settings).client("dynamodb"),
            TABLE,
            run_id="20261206T000000000Z-newer1",
            expiry=EXPIRY,
        )
        notices = thief.acquire({"name:dev": "dev"})  # another run: the lock is silent, so dead
        assert notices and "no heartbeat for" in notices[0]
        woke = time.time()
        child.send_signal(signal.SIGCONT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGCONT)
            child.kill()
    assert child.returncode == 1, err
    result = json.loads(out.strip().splitlines()[-1])
    started_after = [line for line in marks.read_text().splitlines() if float(line.split()[1]) > woke]
    assert started_after == []  # no unit applied without its lock
    assert "not_run" in result["statuses"].values()
    events = read_events(Path(result["ledger"]))
    lost = [e for e in events if e["event"] == "account_lock_lost"]
    for event in events:
        check("ledger-event", event)  # account_lock_lost (and heartbeat_failed, when a beat came first)
    assert len(lost) == 1 and "run 20261206T000000000Z-newer1" in lost[0]["reason"]
    assert [i["run_id"]["S"] for i in lock_items(sessions)] == [thief.run_id]  # the newer run's, kept
    thief.release()
