"""refarch stops on SIGTERM and frees its repo lock; a pathological pattern from configuration
cannot hang it (RE2 matches in linear time). The `world` of test_run_cli: a subprocess, moto
for STS, the terragrunt stand-in. About 15 s in all (three refarch runs, moto started once)."""

import fcntl
import os
import signal
import time

import pytest

from tests.integration import test_run_cli
from tests.integration.test_run_cli import wait_for

world = test_run_cli.world  # the fixture, shared

pytestmark = pytest.mark.integration

VPC = "dev/us-east-1/vpc"
PATHOLOGICAL = """
errors {
  retry "backtracking" {
    retryable_errors   = ["(a+)+b"]
    max_attempts       = 3
    sleep_interval_sec = 60
  }
}
"""


def lock_is_free(root):
    """The repo lock is flock(2) on .refarch/lock: free when another open file can take it."""
    fd = os.open(root / ".refarch" / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_backtracking_retry_pattern_over_a_long_error_does_not_hang_apply(world):
    unit = world.root / VPC / "terragrunt.hcl"
    unit.write_text(unit.read_text() + PATHOLOGICAL)
    # Python's re takes about 2**60 steps for (a+)+b over this line; RE2 one pass.
    world.script({VPC: {"fail_times": 1, "stderr": "Error: " + "a" * 60 + "c"}})
    started = time.monotonic()
    result = world.refarch("apply", str(world.root), "--non-interactive", "--include", VPC, "--no-preflight")
    assert time.monotonic() - started < 60
    assert result.returncode == 1, result.stderr  # failed, not retried: the pattern does not match
    assert [c["command"] for c in world.calls() if c["cwd"].endswith(VPC)] == ["apply"]
    assert lock_is_free(world.root)


def test_sigterm_during_a_run_stops_the_tool_frees_the_repo_lock_and_exits_non_zero(world):
    world.script({VPC: {"sleep": 60, "trap_sigint": True}})
    proc = world.start("apply", str(world.root), "--non-interactive", "--include", VPC, "--no-preflight")
    wait_for(world.root.parent / "calls.jsonl", VPC)
    time.sleep(0.3)
    assert not lock_is_free(world.root)  # the run holds it
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode not in (0, None), err
    assert "released" in out  # the tool was asked to stop (SIGINT) and released its state lock
    assert lock_is_free(world.root)


def test_sigterm_during_a_retry_wait_stops_at_once(world):
    unit = world.root / VPC / "terragrunt.hcl"
    unit.write_text(unit.read_text() + PATHOLOGICAL.replace("(a+)+b", "throttled"))
    world.script({VPC: {"fail_times": 5, "stderr": "Error: throttled"}})
    proc = world.start("apply", str(world.root), "--non-interactive", "--include", VPC, "--no-preflight")
    wait_for(world.root.parent / "calls.jsonl", VPC)
    time.sleep(1.0)  # the first attempt has failed: refarch waits 60 s before the next
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 20
    assert proc.returncode not in (0, None), err
    assert lock_is_free(world.root)
