"""One run's shared state: its id, ledger, log folder, masker, outputs cache and event stream.

Everything that several units of a run touch lives here, behind one lock each, so the unit
runner and the scheduler stay free of shared mutable state of their own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from refarch.events import RunEvent, RunEventCallback, UnitOutput
from refarch.exec.masking import Masker
from refarch.files import local_dir
from refarch.models import RetryRecord
from refarch.runner.ledger import LedgerStore, LocalLedgerStore, new_run_id


@dataclass
class UnitRecord:
    """What the run learns about one unit while it runs (owned by that unit's thread)."""

    attempts: int = 0
    duration: float = 0.0
    retries: list[RetryRecord] = field(default_factory=list)
    log_path: str | None = None
    outputs: Mapping[str, Any] | None = None
    rescued: list[Path] = field(default_factory=list)  # state files moved to .refarch/recovery
    changes: dict[str, int] | None = None  # what the apply/destroy/plan changed: add, change, destroy
    policy: list[dict[str, str]] = field(default_factory=list)  # its plan's findings, each with its verdict


class OutputCache:
    """Each unit's outputs, read at most once per run, shared by all its dependents."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, Mapping[str, Any]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self.reads: list[str] = []  # units whose outputs had to be read (not handed over)

    def put(self, path: str, outputs: Mapping[str, Any]) -> None:
        with self._lock:
            self._values[path] = outputs

    def get(self, path: str, read: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
        with self._lock:
            if path in self._values:
                return self._values[path]
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:
            with self._lock:
                if path in self._values:
                    return self._values[path]
            outputs = read()
            with self._lock:
                self._values[path] = outputs
                self.reads.append(path)
            return outputs


class RunSession:
    """The run id, its ledger and log folder under `<repo>/.refarch/runs/`, and its events.
    The ledger comes from `store` (the local JSONL folder by default, or the shared one)."""

    def __init__(
        self,
        root: Path,
        units: list[str],
        *,
        masker: Masker,
        on_event: RunEventCallback | None = None,
        run_id: str | None = None,
        store: LedgerStore | None = None,
    ) -> None:
        self.root = root
        self.run_id = run_id or new_run_id()
        self.log_dir = local_dir(root, "runs", self.run_id)  # ours alone, or UnsafeLocalState
        self.store = store or LocalLedgerStore(root)  # [ledger] backend: local or dynamodb
        self.ledger = self.store.open(self.run_id)
        self.masker = masker
        self.outputs = OutputCache()
        self.records = {path: UnitRecord() for path in units}
        self._on_event = on_event
        self._emit_lock = threading.Lock()

    def emit(self, event: RunEvent) -> None:
        """Hand one event to the caller; never two at once."""
        if self._on_event is not None:
            with self._emit_lock:
                self._on_event(event)

    def log_path(self, slug: str) -> Path:
        return self.log_dir / f"{slug}.log"

    @contextmanager
    def unit_log(self, unit: str, path: Path) -> Iterator[Callable[[str, str], None]]:
        """A line sink for one unit: masks, appends to its log (0600), emits UnitOutput."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        lock = threading.Lock()
        with os.fdopen(fd, "a", encoding="utf-8") as log:
            yield lambda stream, line: self._line(log, lock, unit, stream, line)

    def _line(self, log: TextIO, lock: threading.Lock, unit: str, stream: str, line: str) -> None:
        text = self.masker.mask(line)
        with lock:
            log.write(text + "\n")
            log.flush()
        self.emit(UnitOutput(unit, stream, text))

    def close(self) -> None:
        self.ledger.close()
