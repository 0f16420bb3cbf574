import contextlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from refarch.errors import ToolNotFound
from refarch.exec.process import DEFAULT_SIGNALS, Interrupt, run_process


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


# --- spawning through sh (issue 13 item 8): the behaviours above, and what sh changes ---

PATH = {"PATH": "/usr/bin:/bin"}


def children_of_this_process():
    """(pid, state) of our direct children, from /proc: 'Z' is a zombie nobody reaped."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.append((int(stat.parent.name), fields[0]))
    return found


@pytest.fixture
def leaves_nothing_behind():
    """No thread of ours still runs and no child of ours is left unreaped after the test."""
    before, children = set(threading.enumerate()), set(children_of_this_process())
    yield
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=10)  # sh's cancelled timers end at once; a stray reader would not
        assert not thread.is_alive(), f"stray thread {thread.name}"
    assert set(children_of_this_process()) - children == set()


def test_stdin_data_reaches_the_tool_and_then_end_of_file(tmp_path, leaves_nothing_behind):
    script = "import sys; data = sys.stdin.read(); print(len(data), data.splitlines()[-1])"
    text = "secret\n" * 20000 + "last"  # more than a pipe holds: written while the tool reads
    result = run_process([sys.executable, "-c", script], cwd=tmp_path, env={}, stdin_data=text)
    assert result.ok and result.stdout_tail == f"{len(text)} last"


def test_stdin_data_the_tool_does_not_read_is_not_an_error(tmp_path, leaves_nothing_behind):
    """The tool exits without reading: the rest of the input is dropped (with subprocess the
    write raised BrokenPipeError out of run_process)."""
    result = run_process(
        [sys.executable, "-c", "print('bye')"], cwd=tmp_path, env={}, stdin_data="x" * 5_000_000
    )
    assert result.ok and result.stdout_tail == "bye"


def test_without_stdin_data_the_tool_reads_end_of_file_at_once(tmp_path, leaves_nothing_behind):
    result = run_process(
        [sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"], cwd=tmp_path, env={}
    )
    assert result.stdout_tail == "''"


def test_carriage_returns_end_lines_as_text_pipes_did(tmp_path, leaves_nothing_behind):
    seen = []
    script = r"import sys; sys.stdout.write('10%\r50%\rdone\r\nnext\n\nlast\r')"
    result = run_process(
        [sys.executable, "-c", script], cwd=tmp_path, env={}, on_line=lambda _s, line: seen.append(line)
    )
    assert seen == ["10%", "50%", "done", "next", "", "last"]
    assert result.stdout_tail == "10%\n50%\ndone\nnext\n\nlast"


def test_undecodable_bytes_are_replaced_not_raised(tmp_path, leaves_nothing_behind):
    script = r"import sys; sys.stdout.buffer.write(b'caf\xe9 ok\n')"
    result = run_process([sys.executable, "-c", script], cwd=tmp_path, env={})
    assert result.stdout_tail == "caf\ufffd ok"


def test_a_death_by_signal_is_a_negative_returncode_not_an_exception(tmp_path, leaves_nothing_behind):
    script = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    for guard in (False, True):
        result = run_process([sys.executable, "-c", script], cwd=tmp_path, env={}, guard=guard)
        assert result.returncode == -signal.SIGTERM and not result.ok and not result.interrupted
        assert result.duration > 0 and result.argv == (sys.executable, "-c", script)


def test_interrupt_stops_a_tool_that_does_not_catch_sigint(tmp_path, leaves_nothing_behind):
    """The tool starts with SIGINT at its default under the guard (the guard used to pass on
    its own SIG_IGN, so a shell script or `sleep` ignored the interrupt until SIGKILL)."""
    interrupt = Interrupt()

    def on_line(_stream, line):
        if line == "up":
            interrupt.request()

    result = run_process(
        ["sh", "-c", "echo up; exec sleep 60"], cwd=tmp_path, env=PATH, on_line=on_line, interrupt=interrupt
    )
    assert result.interrupted and result.returncode == -signal.SIGINT


def ignored_signals(status_line):
    mask = int(status_line.split()[1], 16)
    return {sig.name for sig in signal.Signals if mask & (1 << (sig - 1))}


@pytest.mark.parametrize("guard", [False, True])
def test_the_tool_starts_with_default_signal_dispositions(tmp_path, guard, leaves_nothing_behind):
    result = run_process(["grep", "SigIgn", "/proc/self/status"], cwd=tmp_path, env=PATH, guard=guard)
    assert not ignored_signals(result.stdout_tail) & {s.name for s in DEFAULT_SIGNALS}


def test_the_guard_starts_with_default_signal_dispositions(tmp_path, leaves_nothing_behind):
    """The watchdog itself: only what Python sets for itself (SIGPIPE, SIGXFSZ) is ignored."""
    result = run_process(["sh", "-c", "grep SigIgn /proc/$PPID/status"], cwd=tmp_path, env=PATH)
    assert not ignored_signals(result.stdout_tail) & {"SIGINT", "SIGQUIT", "SIGHUP"}


def test_default_signal_dispositions_hold_when_refarch_starts_with_signals_ignored(tmp_path):
    """As a background job of a script (SIGINT, SIGQUIT ignored), under nohup (SIGHUP), with no
    standard input: the checks above, in a pytest started that way (about 1.5 s)."""

    def ignore():  # runs in the forked child
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)

    probe = subprocess.run(
        ["grep", "SigIgn", "/proc/self/status"], preexec_fn=ignore, capture_output=True, text=True, check=True
    )
    assert {"SIGINT", "SIGQUIT", "SIGHUP"} <= ignored_signals(probe.stdout)  # the start is as described
    checks = f"{__file__}::test_the_tool_starts_with_default_signal_dispositions"
    guard = f"{__file__}::test_the_guard_starts_with_default_signal_dispositions"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", checks, guard],
        preexec_fn=ignore,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_an_error_in_on_line_is_raised_once_the_tool_has_ended(tmp_path, leaves_nothing_behind):
    calls = []

    def on_line(_stream, line):
        calls.append(line)
        raise ValueError("the screen is gone")

    script = "for i in range(20000): print('x' * 40)"  # 800 kB: far more than a pipe holds
    with pytest.raises(ValueError, match="the screen is gone"):
        run_process(
            [sys.executable, "-c", script], cwd=tmp_path, env={}, on_line=on_line, log_path=tmp_path / "log"
        )
    assert len(calls) == 1  # not called again after it failed; the tool still ran to its end
    assert len((tmp_path / "log").read_text().splitlines()) == 20000


def test_processes_in_parallel_threads_keep_their_own_lines(tmp_path, leaves_nothing_behind):
    results = {}

    def one(n):
        script = f"import sys\nfor i in range(200): print({n}, i); print({n}, i, file=sys.stderr)"
        results[n] = run_process([sys.executable, "-c", script], cwd=tmp_path, env={}, guard=n % 2 == 0)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, result in results.items():
        expected = "\n".join(f"{n} {i}" for i in range(200))
        assert result.ok and result.stdout_tail == expected and result.stderr_tail == expected


def test_a_grandchild_holding_the_pipe_does_not_keep_a_reader_thread(tmp_path, leaves_nothing_behind):
    """The tool exits but leaves a background child with its stdout: sh stops reading two
    seconds after the tool's exit (the old reader threads lived as long as the grandchild)."""
    before = set(threading.enumerate())
    result = run_process(["sh", "-c", "sleep 60 & echo $!"], cwd=tmp_path, env=PATH, guard=False)
    try:
        for thread in set(threading.enumerate()) - before:
            thread.join(timeout=3)
            assert not thread.is_alive(), f"{thread.name} still reads the grandchild's pipe"
    finally:
        os.kill(int(result.stdout_tail), signal.SIGKILL)
    assert result.ok


def test_a_missing_working_directory_is_a_failed_start(tmp_path, leaves_nothing_behind):
    """As with subprocess: callers (git_toplevel) treat it as ToolNotFound, and no child is left."""
    with pytest.raises(ToolNotFound, match="git"):
        run_process(["git", "status"], cwd=tmp_path / "gone", env=PATH, guard=False)


def test_a_relative_tool_path_is_relative_to_the_working_directory(tmp_path, leaves_nothing_behind):
    tool = tmp_path / "bin" / "hello"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho hello from $(pwd)\n")
    tool.chmod(0o755)
    for guard in (False, True):
        result = run_process(["bin/hello"], cwd=tmp_path, env=PATH, guard=guard)
        assert result.stdout_tail == f"hello from {tmp_path}"


def test_sh_leaves_a_zombie_when_exec_fails_so_run_process_checks_before_the_fork(tmp_path):
    """sh's limitation (see refarch/exec/process.py): a failed exec raises ForkException and
    the child is never reaped. subprocess reaps it. If this starts failing, sh fixed it."""
    import sh

    before = set(children_of_this_process())
    with pytest.raises(sh.ForkException):
        sh.Command(sys.executable)("-c", "pass", _cwd=str(tmp_path / "gone"), _bg=True)
    left = [pid for pid, _state in set(children_of_this_process()) - before]
    assert len(left) == 1, "sh reaped the child of a failed exec: its limitation is gone"
    _pid, status = os.waitpid(left[0], 0)  # what sh does not do: the child is a zombie by now
    assert os.waitstatus_to_exitcode(status) == 255  # sh's child exits 255 when exec fails
    assert set(children_of_this_process()) - before == set()


def test_neither_arguments_nor_output_reach_logging(tmp_path, caplog, leaves_nothing_behind):
    """sh logs the command line and raw output chunks; they are unmasked, so they stay out."""
    caplog.set_level(logging.DEBUG)
    result = run_process(["echo", "--password=hunter2"], cwd=tmp_path, env=PATH, guard=False)
    assert result.stdout_tail == "--password=hunter2"
    assert "hunter2" not in caplog.text


def test_sh_is_used_and_only_by_the_process_module():
    """pyproject.toml lists sh because process.py imports it (no dependency nothing imports)."""
    import ast

    import refarch

    package = Path(refarch.__file__).parent

    def imports_sh(path):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sh" for a in node.names):
                return True
            if (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").split(".")[0] == "sh"
            ):
                return True
        return False

    importers = {path.relative_to(package).as_posix() for path in package.rglob("*.py") if imports_sh(path)}
    assert importers == {"exec/process.py"}
    assert '"sh>=' in (package.parent / "pyproject.toml").read_text()


def test_guard_survives_sigint_but_passes_it_on(tmp_path, leaves_nothing_behind):
    """The watchdog catches SIGINT with a handler (not SIG_IGN) and ends as its tool ends."""
    script = textwrap.dedent(
        """
        import os, signal, sys, time
        signal.signal(signal.SIGINT, lambda *_: (os.write(1, b"tool got SIGINT\\n"), sys.exit(4)))
        print("up", flush=True)
        time.sleep(60)
        """
    )
    interrupt = Interrupt()
    lines = []

    def on_line(_stream, line):
        lines.append(line)
        if line == "up":
            interrupt.request()

    result = run_process(
        [sys.executable, "-c", script], cwd=tmp_path, env={}, on_line=on_line, interrupt=interrupt
    )
    assert lines == ["up", "tool got SIGINT"], lines
    assert result.returncode == 4 and result.interrupted


def test_a_tool_killed_by_sigkill_is_reported_as_such_not_as_a_traceback(tmp_path):
    """The watchdog dies of the signal its tool died of, SIGKILL included (it cannot be set)."""
    result = run_process(
        [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
        cwd=tmp_path,
        env={},
    )
    assert result.returncode == -9 and "Traceback" not in result.output_tail


def test_tools_not_ours_sees_a_terraform_this_process_did_not_start_and_only_that(tmp_path: Path) -> None:
    """A Terraform that another process started (the shell exits: it is not our descendant)
    may hold a state lock with our Who; one we started, or terraform-ls, never does."""
    import shutil
    import time

    from refarch.exec.process import tools_not_ours

    def named(name: str) -> Path:
        copy = tmp_path / name
        shutil.copy(shutil.which("sleep") or "/bin/sleep", copy)
        return copy

    before = set(tools_not_ours() or [])
    ours = subprocess.Popen([str(named("terraform")), "30"])
    started = subprocess.run(
        [
            "sh",
            "-c",
            f'"{named("terraform_1.5.7")}" 30 >/dev/null 2>&1 & "{named("terraform-ls")}" 30 '
            ">/dev/null 2>&1 & echo $!",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    language_server = int(started.stdout.strip())
    try:
        deadline = time.monotonic() + 10  # a bound, not a timing: the shell's children start
        found: set[int] = set()
        while time.monotonic() < deadline and not found:
            found = set(tools_not_ours() or []) - before
        assert len(found) == 1
        (theirs,) = found
        assert Path(f"/proc/{theirs}/exe").readlink().name == "terraform_1.5.7"
        assert ours.pid not in found and language_server not in found
    finally:
        ours.kill()
        ours.wait()
        for pid in (set(tools_not_ours() or []) - before) | {language_server}:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
