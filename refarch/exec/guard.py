"""The watchdog between refarch and each tool it runs: the tool stops cleanly when refarch dies.

Run as a script (`python -I guard.py TOOL ARGS...`, standard library only): it starts the tool
in its own process group's place, passes its output through line by line, and watches its
own parent. When refarch is gone (SIGKILL, OOM, a lost terminal) the tool gets SIGINT, as
Ctrl-C would give it, and the watchdog keeps reading its output (now discarded) so that
Terraform can finish cleanly and release its state lock instead of dying of SIGPIPE.
Exit status: the tool's, and a tool killed by a signal makes the watchdog die of it too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO

GRACE_SECONDS = float(os.environ.get("REFARCH_GUARD_GRACE", "600"))  # then SIGKILL
POLL_SECONDS = 0.2


def main(argv: list[str]) -> int:
    parent = os.getppid()
    # The tool starts with the dispositions refarch gives every child (process.DEFAULT_SIGNALS),
    # even when the watchdog itself was started with some ignored: Popen resets only SIGPIPE
    # and SIGXFSZ, and exec keeps an ignored SIGQUIT or SIGHUP.
    for sig in (signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    # Ctrl-C / refarch's SIGINT reach the tool itself; the watchdog survives them with a handler
    # that does nothing, not SIG_IGN, which the tool would inherit (exec resets only handlers):
    # a tool that does not catch SIGINT (a shell script, `sleep`) must still stop on it.
    signal.signal(signal.SIGINT, _ignore)
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    orphaned = threading.Event()

    def pump(source: IO[bytes], target: IO[bytes]) -> None:
        for line in iter(source.readline, b""):
            if orphaned.is_set():
                continue
            try:
                target.write(line)
                target.flush()
            except OSError:  # refarch's end of the pipe is gone
                orphaned.set()

    pumps = [
        threading.Thread(target=pump, args=(child.stdout, sys.stdout.buffer), daemon=True),
        threading.Thread(target=pump, args=(child.stderr, sys.stderr.buffer), daemon=True),
    ]
    assert child.stdout is not None and child.stderr is not None
    for thread in pumps:
        thread.start()
    stopping_since: float | None = None
    while child.poll() is None:
        if stopping_since is None and (orphaned.is_set() or os.getppid() != parent):
            orphaned.set()
            stopping_since = time.monotonic()
            _signal(child, signal.SIGINT)
        elif stopping_since is not None and time.monotonic() - stopping_since > GRACE_SECONDS:
            _signal(child, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(POLL_SECONDS)  # returns as soon as the tool ends, not at the next poll
    for thread in pumps:
        thread.join(timeout=5)
    code = child.returncode
    if code < 0:  # die of the same signal, so that refarch sees what the tool saw
        with contextlib.suppress(OSError, ValueError):  # SIGKILL/SIGSTOP cannot be set, only sent
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def _ignore(_signum: int, _frame: object) -> None:
    """SIGINT is for the tool; the watchdog ends when the tool does."""


def _signal(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(sig)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
