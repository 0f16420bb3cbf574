"""A unit never shares its working folder with the tools of a run that died."""

import os
import subprocess
import sys
from pathlib import Path

from refarch.engines.workdir import unit_slug
from refarch.events import RunNotice
from refarch.runner.ledger import read_events
from tests.unit.test_ledger import FakeEngine, go
from tests.unit.test_scheduler import make_plan


def test_a_unit_waits_for_the_tools_a_dead_run_left_in_its_working_folder(tmp_path):
    """refarch SIGKILLed: its Terraform gets SIGINT from the watchdog and may still be stopping
    in the unit's working folder when --resume starts; the unit waits for it (no folder is
    ever shared between two runs), then runs."""
    plan = make_plan({"dev/vpc": ("dev", 2, [])}, root=tmp_path)
    folder = tmp_path / ".refarch" / "work" / unit_slug("dev/vpc") / "module"
    folder.mkdir(parents=True)
    read_end, write_end = os.pipe()
    leftover = subprocess.Popen(  # a stand-in for the dead run's Terraform: stops when told
        [sys.executable, "-c", f"import os; os.read({read_end}, 1)"], cwd=folder, pass_fds=(read_end,)
    )
    os.close(read_end)
    alive_at_execute = []

    class Engine(FakeEngine):
        def execute(self, job):
            alive_at_execute.append(leftover.poll() is None)
            return super().execute(job)

    def on_event(event):
        if isinstance(event, RunNotice) and "waiting for the tools of a run that died" in event.text:
            os.write(write_end, b"x")  # the leftover stops once the unit has said it waits

    try:
        report = go(plan, Engine(), on_event=on_event)
    finally:
        os.close(write_end)
        leftover.wait(10)
    assert report.ok and alive_at_execute == [False]
    events = read_events(Path(report.ledger_path))
    assert [e["pids"] for e in events if e["event"] == "waiting_for_leftovers"] == [[leftover.pid]]
