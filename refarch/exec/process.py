"""The only module that spawns processes: argv lists, explicit cwd/env, streamed, interruptible.

Uses `subprocess` rather than `sh`: we need the child in its own process group (so one
forwarded SIGINT reaches terraform once, not twice via the terminal), stdout and stderr read
line by line into one log in arrival order, and a bounded tail kept for retry matching; `sh`
hides the Popen handle that the group signalling needs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from refarch.errors import ToolNotFound

GUARD = Path(__file__).with_name("guard.py")  # the watchdog each tool runs under
LineCallback = Callable[[str, str], None]  # (stream "stdout" | "stderr", line without newline)
TAIL_LINES = 400


@dataclass
class Interrupt:
    """Shared between a scheduler and its processes: first request = SIGINT, then force = KILL."""

    requested: threading.Event = field(default_factory=threading.Event)
    forced: threading.Event = field(default_factory=threading.Event)

    def request(self) -> None:
        """Ask every running process to stop cleanly (SIGINT), as Ctrl-C would."""
        if self.requested.is_set():
            self.forced.set()
        self.requested.set()


@dataclass(frozen=True)
class ProcessResult:
    """How a process ended, with the tail of its output for retry matching and messages."""

    argv: tuple[str, ...]
    cwd: str
    returncode: int
    stdout_tail: str
    stderr_tail: str
    duration: float
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.interrupted

    @property
    def output_tail(self) -> str:
        return f"{self.stdout_tail}\n{self.stderr_tail}".strip()


def run_process(
    argv: Sequence[str],
    *,
    cwd: str | Path,
    env: Mapping[str, str],
    on_line: LineCallback | None = None,
    log_path: Path | None = None,
    interrupt: Interrupt | None = None,
    stdin_data: str | None = None,
    guard: bool = True,
) -> ProcessResult:
    """Run `argv` to completion, streaming each whole line to `on_line` and to `log_path`.

    `env` is the complete environment of the child (nothing is inherited implicitly).
    On `interrupt.requested` the child's process group gets SIGINT and is waited for, so a
    tool such as Terraform can release its state lock; on `interrupt.forced` it gets SIGKILL.
    With `guard`, the tool runs under refarch/exec/guard.py, which stops it the same way
    if refarch itself dies.
    """
    argv = [str(a) for a in argv]
    started = time.monotonic()
    spawned = argv
    if guard:
        binary = _resolve(argv[0], env)
        spawned = [sys.executable, "-I", str(GUARD), binary, *argv[1:]]
    try:
        proc = subprocess.Popen(
            spawned,
            cwd=str(cwd),
            env=dict(env),
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ToolNotFound(argv[0], hint=f"install {argv[0]} or set its path in refarch.toml") from None
    if stdin_data is not None and proc.stdin is not None:
        proc.stdin.write(stdin_data)
        proc.stdin.close()

    stdout_tail: deque[str] = deque(maxlen=TAIL_LINES)
    stderr_tail: deque[str] = deque(maxlen=TAIL_LINES)
    write_lock = threading.Lock()
    log = log_path.open("a", encoding="utf-8") if log_path else None
    done = threading.Event()
    interrupted = threading.Event()

    def pump(stream: IO[str], name: str, tail: deque[str]) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            tail.append(line)
            with write_lock:
                if log:
                    log.write(line + "\n")
                    log.flush()
                if on_line:
                    on_line(name, line)

    def watch() -> None:
        if interrupt is None:
            return
        while not done.is_set():
            if interrupt.requested.wait(0.1):
                interrupted.set()
                _signal_group(proc, signal.SIGINT)
                while not done.is_set():
                    if interrupt.forced.wait(0.1):
                        _signal_group(proc, signal.SIGKILL)
                        return
                return

    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=pump, args=(proc.stdout, "stdout", stdout_tail), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, "stderr", stderr_tail), daemon=True),
        threading.Thread(target=watch, daemon=True),
    ]
    for thread in readers:
        thread.start()
    try:
        returncode = proc.wait()
    finally:
        done.set()
        for thread in readers:
            thread.join(timeout=5)
        if log:
            log.close()
    return ProcessResult(
        argv=tuple(argv),
        cwd=str(cwd),
        returncode=returncode,
        stdout_tail="\n".join(stdout_tail),
        stderr_tail="\n".join(stderr_tail),
        duration=time.monotonic() - started,
        interrupted=interrupted.is_set(),
    )


def _resolve(binary: str, env: Mapping[str, str]) -> str:
    """The path of `binary` as the child's own PATH finds it (what exec would run)."""
    if os.sep in binary:
        if Path(binary).is_file() and os.access(binary, os.X_OK):
            return binary
    else:
        found = shutil.which(binary, path=env.get("PATH", os.defpath))
        if found:
            return found
    raise ToolNotFound(binary, hint=f"install {binary} or set its path in refarch.toml")


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def capture(argv: Sequence[str], *, cwd: str | Path, env: Mapping[str, str]) -> ProcessResult:
    """Run a short command (a version probe, `git rev-parse`) and keep its output."""
    return run_process(argv, cwd=cwd, env=env, guard=False)
