"""The summary of one run (per unit: status, attempts, retries, duration, log) and its JSON file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refarch.files import write_atomic

# Unit statuses. "done_before" is a unit a resumed run skipped because it succeeded earlier.
SUCCEEDED = "succeeded"
FAILED = "failed"
NOT_RUN = "not_run"
INTERRUPTED = "interrupted"
DONE_BEFORE = "done_before"
OK_STATUSES = (SUCCEEDED, DONE_BEFORE)


@dataclass(frozen=True)
class RetryRecord:
    """One retry: which rule matched after which attempt, and how long the runner waited."""

    attempt: int
    rule: str
    delay: float
    remedy: str | None = None


@dataclass(frozen=True)
class UnitReport:
    """How one unit ended."""

    path: str
    account: str
    status: str
    attempts: int = 0
    duration: float = 0.0
    retries: tuple[RetryRecord, ...] = ()
    log_path: str | None = None
    message: str = ""  # why it failed / was not run (already masked)
    blocked_by: str | None = None  # for not_run: the dependency it waited for

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


@dataclass(frozen=True)
class RunReport:
    """The outcome of `refarch.run()`; `exit_code` is what the CLI exits with."""

    run_id: str
    action: str
    engine: str
    started: float
    finished: float
    units: Mapping[str, UnitReport]  # in plan order
    ledger_path: str | None = None
    resumed_from: str | None = None
    interrupted: bool = False
    counts: Mapping[str, int] = field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # `output` action
    output_reads: tuple[str, ...] = ()  # units whose outputs were read for their dependents

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(u.ok for u in self.units.values())

    @property
    def exit_code(self) -> int:
        """0 all succeeded, 1 something failed or was not run, 130 interrupted."""
        if self.interrupted:
            return 130
        return 0 if self.ok else 1

    @property
    def duration(self) -> float:
        return self.finished - self.started

    def by_status(self, status: str) -> tuple[UnitReport, ...]:
        return tuple(u for u in self.units.values() if u.status == status)

    def to_json(self) -> dict[str, Any]:
        """The `--report FILE.json` document."""
        return {
            "run_id": self.run_id,
            "action": self.action,
            "engine": self.engine,
            "status": "interrupted" if self.interrupted else ("ok" if self.ok else "failed"),
            "exit_code": self.exit_code,
            "started": self.started,
            "finished": self.finished,
            "duration": round(self.duration, 3),
            "ledger": self.ledger_path,
            "resumed_from": self.resumed_from,
            "counts": dict(self.counts),
            "output_reads": list(self.output_reads),
            "units": [
                {
                    "path": u.path,
                    "account": u.account,
                    "status": u.status,
                    "attempts": u.attempts,
                    "duration": round(u.duration, 3),
                    "retries": [
                        {"attempt": r.attempt, "rule": r.rule, "delay": round(r.delay, 3), "remedy": r.remedy}
                        for r in u.retries
                    ],
                    "log": u.log_path,
                    "message": u.message,
                    "blocked_by": u.blocked_by,
                    **({"outputs": self.outputs[u.path]} if u.path in self.outputs else {}),
                }
                for u in self.units.values()
            ],
        }


def count_statuses(units: Mapping[str, UnitReport]) -> dict[str, int]:
    """How many units ended in each status."""
    counts: dict[str, int] = {}
    for unit in units.values():
        counts[unit.status] = counts.get(unit.status, 0) + 1
    return counts


def write_report(report: RunReport, path: Path) -> Path:
    """Write the report as JSON, atomically, readable by its owner only (it names logs and
    accounts); a symlink at `path` is replaced, never written through."""
    return write_atomic(path, json.dumps(report.to_json(), indent=2) + "\n", mode=0o600)
