"""The summary of one run, built by a pure function from what the run recorded, and its file."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from refarch.errors import OutputNotWritten, RefarchError
from refarch.files import write_atomic
from refarch.models import Action, RunReport, Status, UnitReport
from refarch.runner.scheduler import Outcome
from refarch.runner.session import UnitRecord

STOPPED = Outcome(Status.NOT_RUN, "the run stopped")


def build_report(
    *,
    run_id: str,
    action: Action,
    engine: str,
    started: float,
    finished: float,
    accounts: Mapping[str, str],
    selected: Sequence[str],
    outcomes: Mapping[str, Outcome],
    records: Mapping[str, UnitRecord],
    done_before: frozenset[str] = frozenset(),
    resumed_from: str | None = None,
    interrupted: bool = False,
    ledger_path: str | None = None,
    outputs: Mapping[str, Mapping[str, Any]] | None = None,
    output_reads: Sequence[str] = (),
    terraform: Mapping[str, str] | None = None,
) -> RunReport:
    """The report of a run: one UnitReport per selected unit, in plan order. A unit that
    succeeded in the resumed run is done_before; one the run never reached is not_run."""
    units: dict[str, UnitReport] = {}
    for path in selected:
        record = records[path]
        outcome = (
            Outcome(Status.DONE_BEFORE, f"succeeded in run {resumed_from}")
            if path in done_before
            else outcomes.get(path, STOPPED)
        )
        units[path] = UnitReport(
            path=path,
            account=accounts[path],
            status=outcome.status,
            attempts=record.attempts,
            duration=record.duration,
            retries=tuple(record.retries),
            log_path=record.log_path,
            message=outcome.message,
            blocked_by=outcome.blocked_by,
            recovery=tuple(str(f) for f in record.rescued),
            changes=record.changes if path not in done_before else None,
            policy=tuple(record.policy),
        )
    return RunReport(
        run_id=run_id,
        action=action,
        engine=engine,
        started=started,
        finished=finished,
        units=units,
        ledger_path=ledger_path,
        resumed_from=resumed_from,
        interrupted=interrupted,
        counts=count_statuses(units),
        outputs=dict(outputs or {}),
        output_reads=tuple(output_reads),
        terraform=dict(terraform or {}),
    )


def count_statuses(units: Mapping[str, UnitReport]) -> dict[str, int]:
    """How many units ended in each status."""
    counts: dict[str, int] = {}
    for unit in units.values():
        counts[unit.status] = counts.get(unit.status, 0) + 1
    return counts


def write_report(report: RunReport, path: Path) -> Path:
    """Write the report as JSON, atomically, readable by its owner only (it names logs and
    accounts); a symlink at `path` is replaced, never written through. OutputNotWritten
    (naming the run's own exit code) when it cannot be written."""
    try:
        return write_atomic(path, json.dumps(report.to_json(), indent=2) + "\n", mode=0o600)
    except OSError as exc:
        raise OutputNotWritten(
            "run report", path, exc.strerror or str(exc), run_exit_code=report.exit_code
        ) from None
    except RefarchError as exc:  # a folder on the way that is not ours
        raise OutputNotWritten("run report", path, exc.message, run_exit_code=report.exit_code) from None
