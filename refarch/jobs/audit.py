"""`refarch history DIR` and `refarch audit export DIR` as a library: the runs of a live repo
from its ledger (the shared one when refarch.toml says so, else this machine's)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from refarch.runner.history import DriftRow, HistoryRow, drift_history, export_audit, history, open_store
from refarch.runner.history import parse_since as _since


@dataclass(frozen=True)
class HistoryRequest:
    """Which runs to show (`since`: a date, a time or an age such as 12h or 7d)."""

    directory: str | Path
    unit: str | None = None
    since: str | None = None
    drift: bool = False  # per unit: when it last drifted, when it was last in sync
    endpoint_url: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class HistoryResult:
    """Every unit run, oldest first; with `drift`, each unit's drift history instead."""

    runs: tuple[HistoryRow, ...] = ()
    drift: tuple[DriftRow, ...] = ()


def run_history(request: HistoryRequest) -> HistoryResult:
    """Every unit's runs: when, run, action, status, who (CI actor or user, base AWS
    identity), commit, job; or with `drift`, each unit's latest verdict, last drift and last
    return to sync."""
    store = open_store(request.directory, endpoint_url=request.endpoint_url, profile=request.profile)
    since = _since(request.since)
    if request.drift:
        return HistoryResult(drift=tuple(drift_history(store, unit=request.unit, since=since)))
    return HistoryResult(runs=tuple(history(store, unit=request.unit, since=since)))


@dataclass(frozen=True)
class AuditExportRequest:
    """Where to write the audit trail, and from when."""

    directory: str | Path
    out: Path
    since: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class AuditExportResult:
    """How many events were written, and where."""

    count: int
    out: Path


def audit_export(request: AuditExportRequest) -> AuditExportResult:
    """Every event of every run (each with its run_id) as JSON lines, written atomically and
    readable by the user alone: a nightly backup."""
    store = open_store(request.directory, endpoint_url=request.endpoint_url, profile=request.profile)
    since = _since(request.since)
    return AuditExportResult(export_audit(store, Path(request.out), since=since), Path(request.out))
