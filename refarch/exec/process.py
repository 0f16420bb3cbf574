"""The only module that spawns processes: argv lists, explicit cwd/env, streamed, interruptible.

Processes start through `sh` (DESIGN.md names it): `_new_session` puts the tool in its own
session and process group, so one forwarded SIGINT reaches Terraform once, not twice via the
terminal, and `.signal_group()` stops the tool and its children together; `_out`/`_err`
callbacks get whole lines, read by sh's one output thread in arrival order; `_env`, `_cwd`
and `_in` are given explicitly; `_ok_code` takes every exit status, so a failing tool is a
ProcessResult, never an exception.

What is not `sh`, and why:
- guard.py, the watchdog each tool runs under, keeps `subprocess`: it is a script run as
  `python -I guard.py TOOL ...` that must start fast with nothing but the standard library
  (importing sh costs about 50 ms, mostly asyncio, per tool started).
- sh forks the Python interpreter and runs Python code in the child before exec (subprocess
  does it in C, with vfork); that is slower (bench/process.py on 2 shared cores: +3 to 6 ms
  a process from a bare interpreter, +15 to 37 ms from a 260 MB parent, as fork copies its
  page tables; +1.5 to 4 us a line of output; small beside a Terraform command) and, in a
  process with threads (the scheduler, sh's own reader threads), safe only while nothing
  in the child takes a lock another thread held at the fork (amoffat/sh#607; Python 3.12
  warns about it). sh's child takes none unless a caller adds a `_preexec_fn`, and ours
  only resets a signal.
- When exec itself fails, sh raises ForkException without reaping the child, which stays a
  zombie (tests/unit/test_process.py shows it). So the binary and the working directory are
  checked before the fork, which leaves only exotic exec failures (a corrupt binary).
- Every child starts with SIGINT, SIGQUIT, SIGHUP, SIGPIPE and SIGXFSZ at their defaults,
  whatever refarch inherited: a shell starts a background job with SIGINT and SIGQUIT
  ignored, `nohup` ignores SIGHUP, sh's `_bg=True` ignores SIGHUP, Python ignores SIGPIPE
  and SIGXFSZ; an ignored disposition survives exec, so a tool (and the guard) started
  that way would never stop on the signal meant for it. `_preexec_fn` resets all five.
- sh logs each command line (INFO) and the first bytes of each output chunk (DEBUG), before
  the caller's masking: its "sh" logger is set to WARNING, so nothing of a tool's arguments
  or output reaches a user's logging.
- sh splits lines on "\\n" only; a lone "\\r" (progress output) also ends a line here, as
  text-mode pipes did before (universal newlines).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from refarch import telemetry
from refarch.errors import ToolNotFound

if TYPE_CHECKING:
    from sh import RunningCommand

GUARD = Path(__file__).with_name("guard.py")  # the watchdog each tool runs under
LineCallback = Callable[[str, str], None]  # (stream "stdout" | "stderr", line without newline)
TAIL_LINES = 400
EVERY_EXIT_CODE = tuple(range(-64, 256))  # exit statuses and deaths by signal: none raises
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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


@telemetry.traced_process
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
    import sh  # noqa: PLC0415 - here, not at the top: its import (asyncio) costs ~50 ms

    logging.getLogger("sh").setLevel(logging.WARNING)  # its INFO/DEBUG records carry argv and raw output
    argv = [str(a) for a in argv]
    started = time.monotonic()
    binary = _resolve(argv[0], env, cwd)
    program, args = (sys.executable, ["-I", str(GUARD), binary, *argv[1:]]) if guard else (binary, argv[1:])
    stdout_tail: deque[str] = deque(maxlen=TAIL_LINES)
    stderr_tail: deque[str] = deque(maxlen=TAIL_LINES)
    log = log_path.open("a", encoding="utf-8") if log_path else None

    failed: list[BaseException] = []  # the first error of on_line, raised once the tool ends

    def reader(name: str, tail: deque[str]) -> Callable[[str], None]:
        def on_chunk(chunk: str) -> None:  # sh's output thread: one line, in arrival order
            for line in _LINE_BREAK.split(chunk.removesuffix("\n").removesuffix("\r")):
                tail.append(line)
                if log:
                    log.write(line + "\n")
                    log.flush()
                if on_line and not failed:
                    try:
                        on_line(name, line)
                    except Exception as exc:  # keep reading, or the tool blocks on a full pipe
                        failed.append(exc)

        return on_chunk

    try:
        with open(os.devnull, "rb") as devnull:  # noqa: PTH123 - sh hands its fd to the child
            proc: RunningCommand = sh.Command(program)(
                *args,
                _cwd=str(cwd),
                _env=dict(env),
                _in=devnull if stdin_data is None else stdin_data,
                _out=reader("stdout", stdout_tail),
                _err=reader("stderr", stderr_tail),
                _bg=True,
                _bg_exc=False,
                _new_session=True,
                _tty_out=False,
                _ok_code=EVERY_EXIT_CODE,
                _encoding="utf-8",
                _decode_errors="replace",
                _preexec_fn=_default_signals,
                _return_cmd=True,
            )
    except BaseException:
        if log:
            log.close()
        raise
    watcher, interrupted, done = None, threading.Event(), threading.Event()
    if interrupt is not None:
        watcher = threading.Thread(target=_watch, args=(proc, interrupt, interrupted, done), daemon=True)
        watcher.start()
    try:
        proc.wait()  # reaps the child and joins sh's reader threads: every line has arrived
    finally:
        done.set()
        if watcher:
            watcher.join()
        if log:
            log.close()
    if failed:
        raise failed[0]
    return ProcessResult(
        argv=tuple(argv),
        cwd=str(cwd),
        returncode=proc.exit_code,
        stdout_tail="\n".join(stdout_tail),
        stderr_tail="\n".join(stderr_tail),
        duration=time.monotonic() - started,
        interrupted=interrupted.is_set(),
    )


def _watch(
    proc: RunningCommand, interrupt: Interrupt, interrupted: threading.Event, done: threading.Event
) -> None:
    """SIGINT to the process group on the first request, SIGKILL on the second."""
    while not done.is_set():
        if interrupt.requested.wait(0.1):
            interrupted.set()
            _signal_group(proc, signal.SIGINT, done)
            while not done.is_set():
                if interrupt.forced.wait(0.1):
                    _signal_group(proc, signal.SIGKILL, done)
                    return
            return


def _signal_group(proc: RunningCommand, sig: signal.Signals, done: threading.Event) -> None:
    if done.is_set() or proc.process.exit_code is not None:  # reaped: its pid may be reused
        return
    with contextlib.suppress(ProcessLookupError):
        proc.signal_group(sig)


DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ)


def _default_signals() -> None:  # pragma: no cover - runs in the forked child, before exec
    """Every child starts with DEFAULT_SIGNALS at their defaults (see the module docstring)."""
    for sig in DEFAULT_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


def _resolve(binary: str, env: Mapping[str, str], cwd: str | Path) -> str:
    """The path of `binary` as the child's own PATH finds it (what exec would run).

    Checked before the fork: a failed exec inside sh leaves a zombie (see the docstring).
    A missing working directory is ToolNotFound too, as the callers expect of a failed start.
    """
    hint = f"install {binary} or set its path in refarch.toml"
    if not Path(cwd).is_dir():
        raise ToolNotFound(binary, hint=f"{hint} (and check that {cwd} exists)")
    if os.sep in binary:
        path = Path(cwd, binary)  # a relative path is relative to the child's directory
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    else:
        found = shutil.which(binary, path=env.get("PATH", os.defpath))
        if found:
            return str(Path(cwd, found))
    raise ToolNotFound(binary, hint=hint)


def capture(argv: Sequence[str], *, cwd: str | Path, env: Mapping[str, str]) -> ProcessResult:
    """Run a short command (a version probe, `git rev-parse`) and keep its output."""
    return run_process(argv, cwd=cwd, env=env, guard=False)


# -- processes on this machine (/proc; Linux) ---------------------------------------------------
# What may hold a Terraform state lock: terraform, tofu, terragrunt, and their versioned names
# (terraform_1.5.7, terragrunt_linux_amd64); not terraform-ls or terraform-provider-aws.
TOOL_NAME = re.compile(r"(?:terraform|tofu|terragrunt)(?:[-_]v?\d[\w.]*|_linux\w*|_darwin\w*)?")


def processes_in(folder: Path) -> list[int]:
    """Processes whose working folder is `folder` or below: the tools of a run that died may
    still be stopping there (the watchdog gave them SIGINT). Processes this user may not
    inspect are not seen; elsewhere than Linux nothing is."""
    target = os.path.realpath(folder)
    found = []
    for pid, entry in _proc_entries():
        try:
            cwd = str((entry / "cwd").readlink())
        except OSError:
            continue
        if cwd == target or cwd.startswith(target + os.sep):
            found.append(pid)
    return sorted(found)


def tools_not_ours() -> list[int] | None:
    """Terraform, OpenTofu or Terragrunt processes on this machine that this process did not
    start (not its descendants): one of them may hold a state lock with our `Who`. None when
    the machine cannot tell (no /proc): the caller must then assume there are some."""
    if not Path("/proc").is_dir():  # pragma: no cover - not on Linux
        return None
    parents: dict[int, int] = {}
    tools = []
    for pid, entry in _proc_entries():
        try:
            stat = (entry / "stat").read_text()
            name = (entry / "exe").readlink().name
        except OSError:
            continue  # gone, or another user's (whose Who is not ours)
        parents[pid] = int(stat[stat.rindex(")") + 2 :].split()[1])
        if TOOL_NAME.fullmatch(name):
            tools.append(pid)
    return sorted(pid for pid in tools if not _descends_from(pid, os.getpid(), parents))


def _descends_from(pid: int, ancestor: int, parents: Mapping[int, int]) -> bool:
    seen = set()
    while pid not in seen and pid > 1:
        seen.add(pid)
        pid = parents.get(pid, 0)
        if pid == ancestor:
            return True
    return False


def _proc_entries() -> list[tuple[int, Path]]:
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - not on Linux
        return []
    return [(int(entry.name), entry) for entry in proc.iterdir() if entry.name.isdigit()]
