"""One run per repo at a time: `.refarch/lock`, held with flock(2) for the life of the run.

The kernel drops a flock when its holder dies, however it dies, so a lock left by a dead
run is simply free again; the holder's record in the file (pid, host, run id, since) names
who has it for a refused run, and the run that takes over from a dead one says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from refarch.errors import RefarchError

LOCK_FILE = Path(".refarch") / "lock"


class RepoBusy(RefarchError):
    """Another refarch run holds this repo: refused at once, never waited for."""

    exit_code = 2

    def __init__(self, root: Path, holder: dict[str, object]) -> None:
        self.holder = holder
        who = ", ".join(
            f"{k} {holder[k]}" for k in ("command", "run_id", "pid", "host", "since") if holder.get(k)
        )
        super().__init__(
            f"another refarch run is working on {root}: {who or 'holder unknown'}",
            hint="wait for it to finish (two runs would share working folders and state locks); "
            "if that process is gone, its lock is released with it",
        )


@dataclass(frozen=True)
class HeldLock:
    """The repo lock this process holds, and the dead holder it took over from, if any."""

    path: Path
    previous: dict[str, object] | None  # a run that died holding the lock

    @property
    def notice(self) -> str | None:
        if not self.previous:
            return None
        p = self.previous
        return (
            f"took over the repo lock of {p.get('command', 'a run')} {p.get('run_id') or ''} "
            f"(pid {p.get('pid')} on {p.get('host')} since {p.get('since')}), which is no longer running"
        ).replace("  ", " ")


@contextlib.contextmanager
def repo_lock(root: Path, command: str, run_id: str | None = None) -> Iterator[HeldLock]:
    """Hold the repo's lock while the block runs; raise RepoBusy if a live run holds it."""
    path = root / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RepoBusy(root, _read(fd)) from None
        previous = _read(fd) or None
        record = {
            "command": command,
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.fromtimestamp(time.time(), tz=UTC).isoformat(timespec="seconds"),
        }
        _write(fd, json.dumps(record))
        try:
            yield HeldLock(path, previous)
        finally:
            _write(fd, "")  # released cleanly: nobody to take over from
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read(fd: int) -> dict[str, object]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 64 * 1024)
    try:
        value = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"command": "an unreadable lock record"}
    return value if isinstance(value, dict) else {}


def _write(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, text.encode("utf-8"))
    os.fsync(fd)
