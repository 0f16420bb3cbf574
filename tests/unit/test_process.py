import sys
import threading

from refarch.exec.process import Interrupt, run_process


def test_streams_whole_lines_to_callback_and_log(tmp_path):
    seen = []
    log = tmp_path / "unit.log"
    result = run_process(
        [sys.executable, "-c", "import sys; print('a'); print('b', file=sys.stderr); print('c')"],
        cwd=tmp_path,
        env={},
        on_line=lambda s, line: seen.append((s, line)),
        log_path=log,
    )
    assert result.ok
    assert ("stdout", "a") in seen and ("stderr", "b") in seen and ("stdout", "c") in seen
    assert sorted(log.read_text().splitlines()) == ["a", "b", "c"]
    assert result.stderr_tail == "b"


def test_nonzero_exit_is_reported_not_raised(tmp_path):
    result = run_process([sys.executable, "-c", "raise SystemExit(3)"], cwd=tmp_path, env={})
    assert result.returncode == 3 and not result.ok


def test_interrupt_sends_sigint_and_waits_for_cleanup(tmp_path):
    script = (
        "import signal, sys, time\n"
        "def bye(*_):\n"
        "    print('cleaning up', flush=True); time.sleep(0.2); print('released', flush=True)\n"
        "    sys.exit(1)\n"
        "signal.signal(signal.SIGINT, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    interrupt = Interrupt()
    lines = []

    def on_line(_stream, line):
        lines.append(line)
        if line == "ready":
            threading.Timer(0.1, interrupt.request).start()

    result = run_process(
        [sys.executable, "-c", script], cwd=tmp_path, env={}, on_line=on_line, interrupt=interrupt
    )
    assert result.interrupted
    assert lines[-1] == "released"
    assert result.returncode == 1  # the SIGINT handler's exit, not the end of the 30 s sleep


TOOL_HOLDING_A_LOCK = """
import pathlib, signal, sys, time
marker = pathlib.Path(sys.argv[1])
def stop(*_):
    for _ in range(200):  # Terraform talks a lot while it stops: the pipe must stay open
        print("Interrupt received. Gracefully shutting down...", flush=True)
    marker.write_text("released")
    sys.exit(1)
signal.signal(signal.SIGINT, stop)
print("locked", flush=True)
time.sleep(60)
marker.write_text("timed out")
"""

REFARCH_THAT_DIES = """
import pathlib, sys
from refarch.exec.process import run_process
tool, marker = sys.argv[1], sys.argv[2]
def on_line(_stream, line):
    if line == "locked":
        print("tool is locked", flush=True)
run_process([sys.executable, "-c", tool, marker], cwd=".", env={}, on_line=on_line)
"""


def test_the_tool_stops_cleanly_when_refarch_is_killed(tmp_path):
    """SIGKILL of refarch: its tool gets SIGINT (as from Ctrl-C) and can release its lock,
    instead of dying of SIGPIPE when it next writes to refarch's end of the pipe."""
    import signal
    import subprocess
    import time

    marker = tmp_path / "lock-state"
    refarch = subprocess.Popen(
        [sys.executable, "-c", REFARCH_THAT_DIES, TOOL_HOLDING_A_LOCK, str(marker)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert refarch.stdout is not None and refarch.stdout.readline().strip() == "tool is locked"
    refarch.send_signal(signal.SIGKILL)
    refarch.wait(10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not marker.exists():
        time.sleep(0.05)
    assert marker.read_text() == "released"


def test_a_missing_tool_is_a_clear_error_before_anything_starts(tmp_path):
    import pytest

    from refarch.errors import ToolNotFound

    with pytest.raises(ToolNotFound, match="no-such-tool-xyz"):
        run_process(["no-such-tool-xyz", "apply"], cwd=tmp_path, env={"PATH": str(tmp_path)})
