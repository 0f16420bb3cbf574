"""Trust under faults, with the real Terraform 1.0.3 and the moto server: Terraform's recovery
state survives a backend that fails mid-apply, and `refarch recover` pushes it back."""

from __future__ import annotations

import contextlib
import hashlib
import json
import stat
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from refarch.engines.terraform import TerraformEngine
from refarch.events import RunNotice
from refarch.models import Plan, RunReport, Status
from refarch.planner import plan as make_plan
from refarch.runner.ledger import read_events
from refarch.runner.recovery import pending_recovery
from refarch.runner.run import RunOptions, recover, run
from refarch.settings import Settings
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


def apply(
    harness: Harness,
    plan: Plan,
    engine: TerraformEngine,
    events: list[Any],
    resume: str | None = None,
    settings: Settings | None = None,
) -> RunReport:
    options = RunOptions(resume=resume, history=False)
    return run(
        plan,
        "apply",
        settings or harness.settings,
        engine=engine,
        base_env=harness.base_env,
        on_event=events.append,
        options=options,
    )


def apply_with_backend_failing_mid_apply(
    harness: Harness, plan: Plan, engine: TerraformEngine, events: list[Any]
) -> RunReport:
    """An apply whose backend refuses state writes once Terraform holds the lock (so it can
    only keep its state in errored.tfstate); the backend works again afterwards."""
    s3 = harness.client("s3", "security")

    def break_the_backend_once_locked() -> None:
        deadline = time.monotonic() + 240  # a bound, not a timing: CI machines may be slow
        while time.monotonic() < deadline and not harness.locks("security"):
            time.sleep(0.05)
        s3.put_bucket_policy(Bucket=bucket_for("security"), Policy=json.dumps(DENY_STATE_WRITES))

    breaker = threading.Thread(target=break_the_backend_once_locked, daemon=True)
    breaker.start()
    report = apply(harness, plan, engine, events)
    breaker.join(5)
    s3.delete_bucket_policy(Bucket=bucket_for("security"))
    return report


def test_a_state_terraform_could_not_save_is_moved_aside_reported_and_pushed_back(harness: Harness) -> None:
    path = "security/us-east-1/slow"
    plan = one_unit_plan(harness, path, 700)
    s3 = harness.client("s3", "security")

    events: list[Any] = []
    engine = TerraformEngine(harness.settings)
    report = apply_with_backend_failing_mid_apply(harness, plan, engine, events)

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


def test_resume_pushes_the_waiting_state_back_itself_then_runs_the_unit(harness: Harness) -> None:
    path = "security/us-east-1/slow"
    plan = one_unit_plan(harness, path, 700)
    engine = TerraformEngine(harness.settings)
    failed = apply_with_backend_failing_mid_apply(harness, plan, engine, [])
    assert failed.units[path].status == Status.FAILED and len(failed.units[path].recovery) == 1
    kept = Path(failed.units[path].recovery[0])

    events: list[Any] = []
    resumed = apply(harness, plan, engine, events, resume="last")
    assert resumed.ok, resumed.units[path].message
    assert pending_recovery(harness.root, path) == []
    assert not kept.exists() and kept.with_name("errored.tfstate.pushed").is_file()  # kept, renamed
    notices = [e.text for e in events if isinstance(e, RunNotice) and e.unit == path]
    assert any(f"pushed back the state that run {failed.run_id} could not save" in t for t in notices)
    ledger = read_events(Path(resumed.ledger_path or ""))
    names = [e["event"] for e in ledger if e.get("unit") == path]
    assert names.index("state_pushed") < names.index("attempt")  # pushed first, then run
    pushed = next(e for e in ledger if e["event"] == "state_pushed")
    assert pushed["file"].endswith("errored.tfstate.pushed") and pushed["rescued_by"] == failed.run_id
    s3 = harness.client("s3", "security")
    state = json.loads(
        s3.get_object(Bucket=bucket_for("security"), Key=f"{path}/terraform.tfstate")["Body"].read()
    )
    assert state["outputs"]["work"]["value"] == sum(i * j for i in range(700) for j in range(700))
    assert harness.locks("security") == []


SLOW_UNIT = """
include "root" {
  path = find_in_parent_folders("root.hcl")
}

terraform {
  source = "../../../../modules//slow"
}

inputs = {
  size = %d
}
"""


def cli(harness: Harness, *args: str, **kwargs: Any) -> Any:
    import os
    import subprocess
    import sys

    env = {**os.environ, **harness.base_env, "CI": "true"}
    command = [sys.executable, "-c", "from refarch.cli import main; main()", *args]
    return subprocess.Popen(
        command, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs
    )


def test_sigkill_of_refarch_mid_apply_leaves_no_lock_and_resume_finishes(harness: Harness) -> None:
    import signal

    from tests.integration.test_terraform_engine import ECHO_UNIT, write_live

    write_live(
        harness.root,
        {"security/us-east-1/slow": SLOW_UNIT % 1000, "security/us-east-1/echo": ECHO_UNIT % "after"},
    )
    first = cli(harness, "apply", str(harness.root), "--non-interactive", "--engine", "terraform", "-j", "1")
    slow_lock = f"{bucket_for('security')}/security/us-east-1/slow/terraform.tfstate"
    deadline = time.monotonic() + 240  # echo may run first (-j 1): wait for the slow unit's lock
    while time.monotonic() < deadline and slow_lock not in harness.locks("security") and first.poll() is None:
        time.sleep(0.05)
    if slow_lock not in harness.locks("security"):  # say why: the run's own words
        first.kill()
        out, err = first.communicate(timeout=30)
        pytest.fail(f"the slow apply never took its lock (exit {first.returncode}):\n{out}\n{err}")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    deadline = time.monotonic() + 240  # a bound, not a timing: CI machines may be slow
    while time.monotonic() < deadline and harness.locks("security"):
        time.sleep(0.1)
    assert harness.locks("security") == []  # Terraform stopped as on Ctrl-C and released it

    resumed = cli(
        harness, "apply", str(harness.root), "--non-interactive", "--engine", "terraform", "--resume", "last"
    )
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out + err
    assert harness.locks("security") == []
    assert sorted(harness.state_keys("security")) == [
        "security/us-east-1/echo/terraform.tfstate",
        "security/us-east-1/slow/terraform.tfstate",
    ]


def test_resume_releases_exactly_the_locks_its_dead_run_left(harness: Harness) -> None:
    """A lost machine: the dead run's lock stays in DynamoDB. --resume releases it (same
    LockID, same Who, taken after the unit started) and never a lock held by anyone else."""
    from datetime import UTC, datetime

    from refarch import load_repo
    from refarch.runner.state_locks import who_am_i
    from tests.integration.test_terraform_engine import ECHO_UNIT, write_live

    write_live(
        harness.root,
        {"security/us-east-1/ours": ECHO_UNIT % "a", "security/us-east-1/theirs": ECHO_UNIT % "b"},
    )
    repo_plan = make_plan(
        load_repo(harness.root, env=harness.base_env, settings=harness.settings, cache=False),
        "apply",
    )
    # The ledger of a run that died with both units started.
    from refarch.runner.ledger import Ledger, runs_dir
    from refarch.runner.state_locks import lock_record

    now = time.time()
    with Ledger(runs_dir(harness.root) / "20261130T000000Z-dead00.jsonl") as ledger:
        ledger.write(
            "run_start",
            run_id="20261130T000000Z-dead00",
            action="apply",
            units=list(repo_plan.units),
            digests={p: u.digest for p, u in repo_plan.repo.units.items()},
        )
        for path in repo_plan.units:
            ledger.write("unit_start", unit=path, lock=lock_record(repo_plan.repo.units[path], who_am_i()))
    created = datetime.fromtimestamp(now + 1, tz=UTC).isoformat().replace("+00:00", "Z")
    dynamo = harness.client("dynamodb", "security")
    for path, who in (("security/us-east-1/ours", who_am_i()), ("security/us-east-1/theirs", "alice@laptop")):
        info = {
            "ID": f"id-{path.rsplit('/', 1)[1]}",
            "Operation": "OperationTypeApply",
            "Who": who,
            "Created": created,
        }
        dynamo.put_item(
            TableName=LOCK_TABLE,
            Item={
                "LockID": {"S": f"{bucket_for('security')}/{path}/terraform.tfstate"},
                "Info": {"S": json.dumps(info)},
            },
        )

    events: list[Any] = []
    settings = replace(harness.settings, sections={"retry": {"lock_timeout": "1s"}})
    report = run(
        repo_plan,
        "apply",
        settings,
        engine=TerraformEngine(settings),
        base_env=harness.base_env,
        on_event=events.append,
        options=RunOptions(resume="last"),
    )
    assert report.units["security/us-east-1/ours"].status == Status.SUCCEEDED
    theirs = report.units["security/us-east-1/theirs"]
    assert theirs.status == Status.FAILED and "state-lock" in theirs.message and "id-theirs" in theirs.message
    assert harness.locks("security") == [
        f"{bucket_for('security')}/security/us-east-1/theirs/terraform.tfstate"
    ]
    assert any(isinstance(e, RunNotice) and "released the state lock id-ours" in e.text for e in events)
    ledger_events = read_events(Path(report.ledger_path or ""))
    assert [e["unit"] for e in ledger_events if e["event"] == "lock_released"] == ["security/us-east-1/ours"]


def test_a_lock_left_by_a_killed_terraform_is_released_by_the_run_itself(harness: Harness) -> None:
    """An OOM-killed (SIGKILLed) Terraform cannot release its state lock: the run that started
    it releases it when the attempt fails (same Who, taken during the attempt), so neither
    --resume nor a plain apply finds a stranded lock."""
    import os
    import signal

    path = "security/us-east-1/slow"
    plan = one_unit_plan(harness, path, 700)
    binary = os.path.realpath(TerraformEngine(harness.settings).binary_for(plan.repo.units[path]))

    def kill_terraform_once_locked() -> None:
        deadline = time.monotonic() + 240  # a bound, not a timing: CI machines may be slow
        while time.monotonic() < deadline and not harness.locks("security"):
            time.sleep(0.05)
        for pid in descendants(os.getpid()):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/exe") == binary:
                    os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_terraform_once_locked, daemon=True)
    killer.start()
    events: list[Any] = []
    report = apply(harness, plan, TerraformEngine(harness.settings), events)
    killer.join(5)
    assert report.units[path].status == Status.FAILED
    assert harness.locks("security") == []
    assert any(isinstance(e, RunNotice) and "released the state lock" in e.text for e in events)
    ledger = read_events(Path(report.ledger_path or ""))
    assert [e["unit"] for e in ledger if e["event"] == "lock_released"] == [path]
    again = apply(harness, plan, TerraformEngine(harness.settings), [])
    assert again.ok, again.units[path].message


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            stat_line = (entry / "stat").read_text()
            children.setdefault(int(stat_line[stat_line.rindex(")") + 2 :].split()[1]), []).append(
                int(entry.name)
            )
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def test_a_missing_hook_binary_fails_its_unit_only_and_every_started_unit_finishes(harness: Harness) -> None:
    hooked = harness.add_unit("security/us-east-1/hooked", "security", "echo", {"name": "x"})
    hook = {"check": {"commands": ["apply"], "execute": ["refarch-no-such-tool", "--check"]}}
    harness.units[hooked.path] = replace(hooked, terraform={"before_hook": hook})
    harness.add_unit("security/us-east-1/plain", "security", "echo", {"name": "y"})
    report = apply(harness, make_plan(harness.repo, "apply"), TerraformEngine(harness.settings), [])
    failed = report.units[hooked.path]
    assert failed.status == Status.FAILED and "refarch-no-such-tool" in failed.message
    assert report.units["security/us-east-1/plain"].status == Status.SUCCEEDED  # the run went on
    ledger = read_events(Path(report.ledger_path or ""))
    started = sorted(e["unit"] for e in ledger if e["event"] == "unit_start")
    finished = sorted(e["unit"] for e in ledger if e["event"] == "unit_finish")
    assert started == finished == sorted(report.units)
    assert ledger[-1]["event"] == "run_finish" and harness.locks("security") == []


def test_resume_repairs_a_state_digest_its_dead_run_left_behind(harness: Harness) -> None:
    """A Terraform killed between writing its state to S3 and its digest to DynamoDB leaves
    them disagreeing, and every later init fails. --resume of that run (and only a resume, for
    a unit the dead run left unfinished) sets the digest to that of the state in S3."""
    from refarch import load_repo
    from refarch.runner.ledger import Ledger, runs_dir
    from tests.integration.test_terraform_engine import ECHO_UNIT, write_live

    path = "security/us-east-1/echo"
    write_live(harness.root, {path: ECHO_UNIT % "before"})
    repo = load_repo(harness.root, env=harness.base_env, settings=harness.settings, cache=False)
    engine = TerraformEngine(harness.settings)
    assert run(
        make_plan(repo, "apply"), "apply", harness.settings, engine=engine, base_env=harness.base_env
    ).ok
    digest_id = f"{bucket_for('security')}/{path}/terraform.tfstate-md5"
    dynamo = harness.client("dynamodb", "security")
    good = dynamo.get_item(TableName=LOCK_TABLE, Key={"LockID": {"S": digest_id}})["Item"]["Digest"]["S"]
    dynamo.put_item(TableName=LOCK_TABLE, Item={"LockID": {"S": digest_id}, "Digest": {"S": "0" * 32}})

    plan = make_plan(repo, "apply")
    plain = run(plan, "apply", harness.settings, engine=engine, base_env=harness.base_env)
    assert plain.units[path].status == Status.FAILED  # not a resume: the mismatch is reported, not touched
    assert "does not have the expected content" in plain.units[path].message

    dead = "20261130T000000000Z-dead01"
    with Ledger(runs_dir(harness.root) / f"{dead}.jsonl") as ledger:
        ledger.write(
            "run_start", run_id=dead, action="apply", units=[path], digests={path: repo.units[path].digest}
        )
        ledger.write("unit_start", unit=path)
    events: list[Any] = []
    resumed = run(
        plan,
        "apply",
        harness.settings,
        engine=engine,
        base_env=harness.base_env,
        on_event=events.append,
        options=RunOptions(resume=dead),
    )
    assert resumed.units[path].status == Status.SUCCEEDED, resumed.units[path].message
    key = f"{path}/terraform.tfstate"
    state = harness.client("s3", "security").get_object(Bucket=bucket_for("security"), Key=key)
    now = dynamo.get_item(TableName=LOCK_TABLE, Key={"LockID": {"S": digest_id}})["Item"]["Digest"]["S"]
    assert now == hashlib.md5(state["Body"].read(), usedforsecurity=False).hexdigest()  # in step again
    assert any(isinstance(e, RunNotice) and "state digest" in e.text for e in events)
    ledger_events = read_events(Path(resumed.ledger_path or ""))
    assert [e["digest"] for e in ledger_events if e["event"] == "state_digest_repaired"] == [good]


class LockRequestSentTwice:
    """An HTTP proxy in front of moto that sends the first DynamoDB lock request (PutItem with
    `attribute_not_exists(LockID)`) twice and answers the second reply: what the server sees
    when the AWS SDK retries a PutItem whose reply was lost after it had taken the lock
    (Terraform 1.11 did this in CI; opentofu/opentofu#4405 is the same for S3 lock files).
    The client then reads "ConditionalCheckFailedException" with its own lock's info."""

    def __init__(self, target: str) -> None:
        import http.server
        from urllib.parse import urlsplit

        self.target = urlsplit(target)
        self.doubled = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sends = 1
                if (
                    self.headers.get("X-Amz-Target", "").endswith(".PutItem")
                    and b"attribute_not_exists(LockID)" in body
                    and not outer.doubled.is_set()
                ):
                    outer.doubled.set()
                    sends = 2
                for _ in range(sends):
                    status, headers, reply = outer.send(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        import http.client

        connection = http.client.HTTPConnection(self.target.hostname or "", self.target.port, timeout=60)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_lock_its_own_terraform_found_taken_is_released_and_the_unit_applied(
    tmp_path: Path, moto_server: Any
) -> None:
    """Terraform's lock request is sent twice (its reply lost); the second finds the lock the
    first took and Terraform fails with "Error acquiring the state lock" naming its own lock.
    Nobody else can hold it (our Who, taken during the attempt, no Terraform on this machine
    that the run did not start): the run releases it, says so, and the retry applies."""
    from refarch.exec.process import tools_not_ours

    if tools_not_ours():
        pytest.skip("a Terraform this test did not start runs on this machine: the lock could be its")
    proxy = LockRequestSentTwice(moto_server.endpoint_url)
    try:
        harness = Harness(tmp_path, proxy.endpoint_url)
        harness.make_backend("security")
        path = "security/us-east-1/slow"
        plan = one_unit_plan(harness, path, 1)
        events: list[Any] = []
        report = apply(harness, plan, TerraformEngine(harness.settings), events)
        assert proxy.doubled.is_set(), "the double never saw Terraform's lock request"
        unit = report.units[path]
        assert unit.status == Status.SUCCEEDED, unit.message
        assert [r.rule for r in unit.retries] == ["state-lock-released"]
        assert harness.locks("security") == []
        ledger = read_events(Path(report.ledger_path or ""))
        released = [e for e in ledger if e["event"] == "lock_released"]
        assert [(e["unit"], e["cause"]) for e in released] == [(path, "own_request")]
        assert any(isinstance(e, RunNotice) and "its lock request was sent again" in e.text for e in events)
    finally:
        proxy.close()


def test_a_lock_that_a_terraform_the_run_did_not_start_may_hold_is_never_released(
    tmp_path: Path, moto_server: Any
) -> None:
    """The same doubled request, but a process named terraform that this run did not start
    is alive on the machine: it could be the holder (same user, same host), so the lock is
    left, and the unit fails with Terraform's own lock message."""
    import os
    import shutil
    import signal
    import subprocess

    proxy = LockRequestSentTwice(moto_server.endpoint_url)
    sleeper_bin = tmp_path / "bin" / "terraform"
    sleeper_bin.parent.mkdir()
    shutil.copy(shutil.which("sleep") or "/bin/sleep", sleeper_bin)
    started = subprocess.run(  # through a shell that exits: the sleeper is not our descendant
        ["sh", "-c", f'"{sleeper_bin}" 600 >/dev/null 2>&1 & echo $!'],
        capture_output=True,
        text=True,
        check=True,
    )
    sleeper = int(started.stdout.strip())
    try:
        harness = Harness(tmp_path, proxy.endpoint_url)
        harness.make_backend("security")
        path = "security/us-east-1/slow"
        plan = one_unit_plan(harness, path, 1)
        settings = replace(harness.settings, sections={"retry": {"lock_timeout": "1s"}})
        report = apply(harness, plan, TerraformEngine(settings), [], settings=settings)
        assert proxy.doubled.is_set(), "the double never saw Terraform's lock request"
        unit = report.units[path]
        assert unit.status == Status.FAILED and "state-lock" in unit.message
        assert harness.locks("security") == [f"{bucket_for('security')}/{path}/terraform.tfstate"]
        ledger = read_events(Path(report.ledger_path or ""))
        assert not [e for e in ledger if e["event"].startswith("lock_release")]
    finally:
        with contextlib.suppress(OSError):
            os.kill(sleeper, signal.SIGKILL)
        proxy.close()
