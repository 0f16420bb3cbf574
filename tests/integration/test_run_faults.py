"""Trust under faults, with the real Terraform 1.0.3 and the moto server: Terraform's recovery
state survives a backend that fails mid-apply, and `refarch recover` pushes it back."""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from refarch.engines.terraform import TerraformEngine
from refarch.events import RunNotice
from refarch.models import Plan, Status
from refarch.planner import plan as make_plan
from refarch.runner.ledger import read_events
from refarch.runner.recovery import pending_recovery
from refarch.runner.run import RunOptions, recover, run
from tests.integration.test_terraform_engine import LOCK_TABLE, Harness, bucket_for

pytestmark = pytest.mark.integration

DENY_STATE_WRITES = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"}],
}


@pytest.fixture
def harness(tmp_path: Path, moto_server: Any) -> Harness:
    h = Harness(tmp_path, moto_server.endpoint_url)
    h.make_backend("security")
    return h


def one_unit_plan(harness: Harness, path: str, size: int) -> Plan:
    harness.add_unit(path, "security", "slow", {"size": size})
    return make_plan(harness.repo, "apply")


def test_a_state_terraform_could_not_save_is_moved_aside_reported_and_pushed_back(harness: Harness) -> None:
    path = "security/us-east-1/slow"
    plan = one_unit_plan(harness, path, 700)
    s3 = harness.client("s3", "security")

    def break_the_backend_once_locked() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not harness.locks("security"):
            time.sleep(0.05)
        s3.put_bucket_policy(Bucket=bucket_for("security"), Policy=json.dumps(DENY_STATE_WRITES))

    breaker = threading.Thread(target=break_the_backend_once_locked, daemon=True)
    breaker.start()
    events: list[Any] = []
    engine = TerraformEngine(harness.settings)
    report = run(
        plan,
        "apply",
        harness.settings,
        engine=engine,
        base_env=harness.base_env,
        on_event=events.append,
        options=RunOptions(history=False),
    )
    breaker.join(5)
    s3.delete_bucket_policy(Bucket=bucket_for("security"))

    unit = report.units[path]
    assert unit.status == Status.FAILED and unit.attempts == 1  # never retried: it would fork
    assert len(unit.recovery) == 1 and unit.recovery[0].endswith("errored.tfstate")
    kept = Path(unit.recovery[0])
    assert kept.is_file() and kept.is_relative_to(harness.root / ".refarch" / "recovery" / report.run_id)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    assert f"refarch recover {harness.root} --run {report.run_id} --unit {path}" in unit.message
    assert any(isinstance(e, RunNotice) and "errored" not in e.text and path == e.unit for e in events)
    ledger = read_events(Path(report.ledger_path or ""))
    assert [e["files"] for e in ledger if e["event"] == "state_rescued"] == [[str(kept)]]
    assert harness.locks("security") == []
    assert harness.state_keys("security") == []  # nothing reached the backend

    # The next apply refuses to fork the state while it waits to be pushed back.
    again = run(plan, "apply", harness.settings, engine=engine, base_env=harness.base_env)
    assert again.units[path].status == Status.FAILED and "refarch recover" in again.units[path].message

    pushed = recover(plan, report.run_id, harness.settings, engine=engine, base_env=harness.base_env)
    assert [(p.unit, p.ok) for p in pushed] == [(path, True)]
    assert pending_recovery(harness.root, path) == [] and pushed[0].file.name == "errored.tfstate.pushed"
    state = json.loads(
        s3.get_object(Bucket=bucket_for("security"), Key=f"{path}/terraform.tfstate")["Body"].read()
    )
    assert state["outputs"]["work"]["value"] == sum(i * j for i in range(700) for j in range(700))
    # ... and the unit runs again, with nothing left to apply.
    final = run(plan, "apply", harness.settings, engine=engine, base_env=harness.base_env)
    assert final.ok, final.units[path].message
    assert LOCK_TABLE and harness.locks("security") == []
