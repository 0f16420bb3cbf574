"""`refarch apply|plan-all|destroy|output` as a user runs them: a subprocess, the moto server
for STS (several accounts through assume-role, the wrong-account guard), and the terragrunt
stand-in on PATH (terragrunt itself is not installable here)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from refarch.aws import AwsSessions
from refarch.settings import Settings
from tests.conftest import ACCOUNTS

pytestmark = pytest.mark.integration

STAND_IN = Path(__file__).resolve().parents[1] / "stand_ins" / "terragrunt"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "live"
REFARCH = [sys.executable, "-c", "from refarch.cli import main; main()"]


@pytest.fixture
def world(tmp_path, moto_server):
    """A copy of the live repo, the stand-in on PATH, credentials for moto only."""
    live = tmp_path / "live"
    shutil.copytree(FIXTURE, live)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "terragrunt").symlink_to(STAND_IN)
    script = tmp_path / "script.json"
    script.write_text("{}")
    # What `refarch preflight` (run before apply) finds referenced: the KMS admin user.
    settings = Settings(endpoint_url=moto_server.endpoint_url)
    iam = AwsSessions(settings).client("iam", ACCOUNTS["security"], account_name="security")
    iam.create_user(UserName="kms-admin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STANDIN_"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=moto_server.endpoint_url,
        STANDIN_TG_RECORD=str(tmp_path / "calls.jsonl"),
        STANDIN_TG_SCRIPT=str(script),
    )

    class World:
        root = live
        endpoint = moto_server.endpoint_url
        environment = env

        def script(self, units):
            script.write_text(json.dumps({"units": units}))

        def calls(self):
            record = tmp_path / "calls.jsonl"
            if not record.exists():
                return []
            return [json.loads(line) for line in record.read_text().splitlines()]

        def refarch(self, *args, **kwargs):
            return subprocess.run(
                [*REFARCH, *args],
                env=env,
                cwd=tmp_path,
                text=True,
                capture_output=True,
                timeout=120,
                check=False,
                **kwargs,
            )

        def start(self, *args):
            return subprocess.Popen(
                [*REFARCH, *args],
                env=env,
                cwd=tmp_path,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )

    return World()


def unit_of(call, root):
    return str(Path(call["cwd"]).relative_to(root))


def test_an_unwritable_report_is_said_after_the_summary_and_the_exit_code_is_the_runs(world, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = world.refarch("apply", str(world.root), "--non-interactive", "--report", str(blocker / "r.json"))
    assert result.returncode == 0, result.stderr  # every unit applied: the run succeeded
    assert "Traceback" not in result.stderr
    summary = result.stderr.index("16 succeeded")
    error = result.stderr.index(f"error: could not write the run report {blocker / 'r.json'}")
    assert summary < error and "(the run itself ended with exit code 0)" in result.stderr


def test_apply_runs_every_unit_in_its_account_and_reports(world, tmp_path):
    result = world.refarch(
        "apply", str(world.root), "--non-interactive", "--report", str(tmp_path / "r.json"), "-j", "3"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"] == {"succeeded": 16}
    # every unit's output line is prefixed with its path, whole
    assert "[dev/us-east-1/app] apply complete" in result.stdout.splitlines()
    assert "16 succeeded" in result.stderr
    calls = world.calls()
    order = [unit_of(c, world.root) for c in calls]
    # tiers: security before shared-services before the rest; dependencies first
    assert max(order.index(u) for u in order if u.startswith("security/")) < min(
        order.index(u) for u in order if u.startswith("shared-services/")
    )
    assert (
        order.index("dev/us-east-1/vpc")
        < order.index("dev/us-east-1/mysql")
        < order.index("dev/us-east-1/app")
    )
    # each unit got its own account's temporary credentials, not the caller's
    dev = next(c for c in calls if unit_of(c, world.root) == "dev/us-east-1/app")
    assert dev["env"]["AWS_ACCESS_KEY_ID"] != "testing" and dev["env"]["AWS_SESSION_TOKEN"]
    assert dev["env"]["AWS_ENDPOINT_URL"] == world.endpoint
    ledger = Path(report["ledger"])
    start = json.loads(ledger.read_text().splitlines()[0])
    accounts = {ident["Account"] for ident in start["identities"].values()}
    assert accounts == set(ACCOUNTS.values())


def test_apply_checks_references_first_unless_no_preflight(world):
    unit = world.root / "security/us-east-1/kms-admin/terragrunt.hcl"
    unit.write_text(unit.read_text().replace("user/kms-admin", "user/nobody"))
    refused = world.refarch("apply", str(world.root), "--non-interactive", "--include", "security/*")
    assert refused.returncode == 2
    assert "cmk_administrator_iam_arns[0] = arn:aws:iam::111111111111:user/nobody" in refused.stderr
    assert "apply not started" in refused.stderr and world.calls() == []
    forced = world.refarch(
        "apply", str(world.root), "--non-interactive", "--include", "security/*", "--no-preflight"
    )
    assert forced.returncode == 0, forced.stderr
    assert {unit_of(c, world.root) for c in world.calls()} == {
        "security/us-east-1/iam",
        "security/us-east-1/kms-admin",
    }


def test_wrong_account_is_refused_and_its_dependents_not_run(world):
    unit = world.root / "dev/us-east-1/vpc/terragrunt.hcl"
    unit.write_text(unit.read_text() + '\niam_role = "arn:aws:iam::999999999999:role/Deploy"\n')
    result = world.refarch("apply", str(world.root), "--non-interactive", "--include", "dev/*")
    assert result.returncode == 1
    assert "refusing to run dev/us-east-1/vpc" in result.stdout + result.stderr
    ran = {unit_of(c, world.root) for c in world.calls()}
    assert "dev/us-east-1/vpc" not in ran and "dev/us-east-1/mysql" not in ran
    assert "dev/us-west-2/vpc" in ran  # the other branch still runs


def test_failure_then_resume_runs_only_what_did_not_succeed(world, tmp_path):
    world.script(
        {
            "dev/us-east-1/vpc": {"outputs": {"vpc_id": "vpc-1"}},  # what mysql reads when resumed
            "dev/us-east-1/mysql": {"fail_times": 1, "stderr": "Error: InvalidParameter"},
        }
    )
    first = world.refarch("apply", str(world.root), "--non-interactive", "--include", "dev/*")
    assert first.returncode == 1
    assert "resume with: refarch apply" in first.stderr
    before = len(world.calls())
    second = world.refarch(
        "apply",
        str(world.root),
        "--non-interactive",
        "--resume",
        "last",
        "--report",
        str(tmp_path / "r.json"),
    )
    assert second.returncode == 0, second.stderr
    rerun = sorted(unit_of(c, world.root) for c in world.calls()[before:] if c["command"] == "apply")
    assert rerun == ["dev/us-east-1/app", "dev/us-east-1/mysql"]
    statuses = {u["path"]: u["status"] for u in json.loads((tmp_path / "r.json").read_text())["units"]}
    assert statuses["dev/us-east-1/vpc"] == "done_before"


def test_resume_continues_after_the_fix(world):
    world.script(
        {
            "dev/us-east-1/vpc": {"outputs": {"vpc_id": "vpc-1"}},
            "dev/us-east-1/mysql": {"fail_times": 1, "stderr": "Error: boom"},
        }
    )
    assert world.refarch("apply", str(world.root), "--non-interactive", "--include", "dev/*").returncode == 1
    for name in ("vpc", "mysql"):  # the fix (mysql failed); vpc succeeded and changed too
        unit = world.root / f"dev/us-east-1/{name}/terragrunt.hcl"
        unit.write_text(unit.read_text() + "\n# edited\n")
    before = len(world.calls())
    result = world.refarch(
        "apply", str(world.root), "--non-interactive", "--include", "dev/*", "--resume", "last"
    )
    assert result.returncode == 0, result.stderr
    assert "changed since they succeeded, not run again: dev/us-east-1/vpc" in result.stdout + result.stderr
    rerun = sorted(unit_of(c, world.root) for c in world.calls()[before:] if c["command"] == "apply")
    assert rerun == ["dev/us-east-1/app", "dev/us-east-1/mysql"]


def test_destroy_walks_the_reverse_order(world):
    result = world.refarch("destroy", str(world.root), "--non-interactive", "-j", "1")
    assert result.returncode == 0, result.stderr
    order = [unit_of(c, world.root) for c in world.calls()]
    assert (
        order.index("dev/us-east-1/app")
        < order.index("dev/us-east-1/mysql")
        < order.index("dev/us-east-1/vpc")
    )
    assert order[-1].startswith("shared-services/")
    assert all(c["argv"][1] == "destroy" for c in world.calls())
    # prevent_destroy on kms-admin keeps it and the iam unit it depends on, as Terragrunt does.
    assert not any(unit.startswith("security/") for unit in order)
    assert "skipping security/us-east-1/kms-admin (prevent_destroy = true)" in result.stderr


def test_output_prints_every_units_outputs_as_json(world):
    world.script({"dev/us-east-1/vpc": {"outputs": {"vpc_id": "vpc-42"}}})
    result = world.refarch("output", str(world.root), "--include", "dev/us-east-1/vpc")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # stdout is the JSON document alone
    assert "dev/us-east-1/vpc" in result.stderr  # progress and the summary go to stderr
    assert document == {"dev/us-east-1/vpc": {"vpc_id": "vpc-42"}}


def test_plan_all_speaks_the_modern_dialect_when_terragrunt_is_new(world):
    world.environment["STANDIN_TG_VERSION"] = "1.0.2"
    result = world.refarch("plan-all", str(world.root), "--include", "stage/*")
    assert result.returncode == 0, result.stderr
    calls = world.calls()
    assert {unit_of(c, world.root) for c in calls} >= {"stage/us-east-1/app", "stage/us-east-1/mysql"}
    for call in calls:
        argv = call["argv"]
        assert argv[1:3] == ["run", "--non-interactive"]
        assert argv[argv.index("--") + 1 :] == ["plan", "-input=false", "-no-color"]
        assert call["env"]["TG_NON_INTERACTIVE"] == "true"


def wait_for(path, text, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_sigint_lets_the_tool_release_its_lock_and_exits_130(world):
    world.script({"dev/us-east-1/vpc": {"sleep": 60, "trap_sigint": True}})
    proc = world.start(
        "apply",
        str(world.root),
        "--non-interactive",
        "--include",
        "dev/us-east-1/mysql",
        "--with-dependencies",
    )
    wait_for(world.root.parent / "calls.jsonl", "dev/us-east-1/vpc")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Releasing state lock" in out and "released" in out
    assert "not_run" in err  # mysql never started


def test_second_sigint_kills_a_tool_that_will_not_stop(world):
    world.script({"dev/us-east-1/vpc": {"sleep": 60, "trap_sigint": True, "stubborn": True}})
    proc = world.start("apply", str(world.root), "--non-interactive", "--include", "dev/us-east-1/vpc")
    wait_for(world.root.parent / "calls.jsonl", "dev/us-east-1/vpc")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None  # still waiting for the stubborn tool
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err


def test_endpoint_url_flag_reaches_sessions_and_tools(world):
    env = {k: v for k, v in world.environment.items() if k != "AWS_ENDPOINT_URL"}
    result = subprocess.run(
        [
            *REFARCH,
            "apply",
            str(world.root),
            "--non-interactive",
            "--endpoint-url",
            world.endpoint,
            "-j",
            "3",
        ],
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    dev = next(c for c in world.calls() if unit_of(c, world.root) == "dev/us-east-1/app")
    assert dev["env"]["AWS_ENDPOINT_URL"] == world.endpoint
    assert dev["env"]["AWS_ACCESS_KEY_ID"] != "testing"  # assumed through the flag's endpoint


def test_on_a_terminal_the_run_shows_live_progress_and_the_summary(world):
    import os
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*REFARCH, "apply", str(world.root), "--non-interactive", "-j", "3"],
        # a person at a terminal: not in CI (where refarch prints plain lines even on a tty)
        env={
            **{k: v for k, v in world.environment.items() if k not in ("CI", "GITHUB_ACTIONS")},
            "TERM": "xterm-256color",
            "COLUMNS": "160",
        },
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=300) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in screen  # styled for a terminal, unlike the plain CI lines
    assert "done" in screen and "waiting" in screen  # the live progress line
    assert "16 succeeded" in screen and "Traceback" not in screen


def test_no_credentials_at_all_is_a_setup_error_before_anything_runs(world):
    env = {
        k: v
        for k, v in world.environment.items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }
    env.update(
        AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null"
    )
    result = subprocess.run(
        [*REFARCH, "apply", str(world.root), "--non-interactive"],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "no AWS credentials found" in result.stderr and "Traceback" not in result.stderr
    assert world.calls() == []


def test_apply_without_a_terminal_needs_explicit_consent(world):
    result = world.refarch("apply", str(world.root))
    assert result.returncode == 2
    assert "no terminal to confirm" in result.stderr and "--non-interactive" in result.stderr
    assert world.calls() == []  # nothing ran


def test_a_partial_destroy_names_the_dependents_it_would_break(world):
    refused = world.refarch("destroy", str(world.root), "--include", "dev/us-east-1/vpc", "--yes")
    assert refused.returncode == 2, refused.stderr
    assert "dev/us-east-1/mysql  (needs dev/us-east-1/vpc)" in refused.stderr
    assert "--allow-broken-dependents" in refused.stderr and world.calls() == []
    allowed = world.refarch(
        "destroy", str(world.root), "--include", "dev/us-east-1/vpc", "--yes", "--allow-broken-dependents"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert [unit_of(c, world.root) for c in world.calls()] == ["dev/us-east-1/vpc"]


def test_feature_flags_reach_terragrunt(world):
    result = world.refarch(
        "plan-all",
        str(world.root),
        "--include",
        "dev/us-east-1/vpc",
        "--ignore-dependencies",
        "--feature",
        "logs=on",
    )
    assert result.returncode == 0, result.stderr
    (call,) = world.calls()
    assert call["env"]["TERRAGRUNT_FEATURE"] == "logs=on" and call["env"]["TG_FEATURE"] == "logs=on"
