"""One run per repo: a second run is refused naming the holder; a dead holder's lock is taken over."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from refarch.events import RunNotice
from refarch.runner.ledger import read_events
from refarch.runner.repo_lock import LOCK_FILE, RepoBusy, repo_lock
from tests.unit.test_ledger import SPEC, FakeEngine, go
from tests.unit.test_scheduler import make_plan


def test_a_second_run_on_the_same_repo_is_refused_naming_the_holder(tmp_path):
    plan = make_plan(SPEC, root=tmp_path)
    inside, release = threading.Event(), threading.Event()

    class BlockingEngine(FakeEngine):
        def execute(self, job):
            inside.set()
            release.wait(10)
            return super().execute(job)

    first = threading.Thread(target=go, args=(plan, BlockingEngine()))
    first.start()
    try:
        assert inside.wait(10)
        with pytest.raises(RepoBusy) as refused:
            go(plan, FakeEngine())
        message = str(refused.value)
        assert "refarch apply" in message and f"pid {os.getpid()}" in message and "since" in message
        assert refused.value.exit_code == 2
    finally:
        release.set()
        first.join(10)
    assert go(plan, FakeEngine()).ok  # free again once the first run ended


def test_the_lock_of_a_killed_run_is_taken_over_with_a_notice(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, pathlib; from refarch.runner.repo_lock import repo_lock\n"
            "with repo_lock(pathlib.Path(sys.argv[1]), 'refarch apply', 'run-that-died'):\n"
            "    print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(RepoBusy, match="run-that-died"):
        go(make_plan(SPEC, root=tmp_path), FakeEngine())
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    assert json.loads((tmp_path / LOCK_FILE).read_text())["run_id"] == "run-that-died"

    events = []
    report = go(make_plan(SPEC, root=tmp_path), FakeEngine(), on_event=events.append)
    assert report.ok
    notices = [e.text for e in events if isinstance(e, RunNotice)]
    assert len(notices) == 1 and "run-that-died" in notices[0] and "no longer running" in notices[0]
    assert any(e["event"] == "notice" for e in read_events(Path(report.ledger_path)))
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released cleanly


def test_a_lock_released_cleanly_leaves_nothing_to_take_over(tmp_path):
    with repo_lock(tmp_path, "refarch destroy") as held:
        assert held.notice is None
    with repo_lock(tmp_path, "refarch apply") as held:
        assert held.notice is None
