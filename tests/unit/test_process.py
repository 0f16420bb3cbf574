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
