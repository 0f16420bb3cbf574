"""The audit trail read back: which unit ran when, by whom, with which result (`refarch history`),
and every event of every run as JSON lines (`refarch audit export`, the nightly backup)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from refarch.aws import AwsSessions
from refarch.config.discover import repo_root
from refarch.errors import OutputNotWritten, UnsafeLocalState, UsageError
from refarch.files import write_atomic
from refarch.repo import load_repo
from refarch.runner.ledger import LedgerStore, LocalLedgerStore
from refarch.runner.ledger_dynamodb import LedgerConfig, store_for
from refarch.settings import load_settings

_AGO = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class HistoryRow:
    """One unit's finish in one run: what, when, who, with which result."""

    ts: float
    run_id: str
    action: str
    unit: str
    account: str
    status: str
    duration: float | None
    digest: str
    actor: str  # the CI actor, else the local user
    caller: str  # the base AWS identity (before any role was assumed)
    job_url: str
    commit: str
    branch: str
    host: str

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(self.ts, tz=UTC).isoformat(timespec="seconds")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "when": self.when}


def open_store(
    directory: str | Path,
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
) -> LedgerStore:
    """The ledger store of the live repo at `directory`, as its refarch.toml says; `profile`
    and `endpoint_url` reach the shared ledger's account as `--profile` / `--endpoint-url`."""
    env = dict(os.environ) if env is None else dict(env)
    root = repo_root(Path(directory).resolve())
    settings = load_settings(root, env).with_overrides(endpoint_url=endpoint_url, profile=profile)
    if not LedgerConfig.from_settings(settings).shared:
        return LocalLedgerStore(root)
    repo = load_repo(root, env=env, settings=settings)  # the accounts: which one holds the ledger
    return store_for(repo, settings, AwsSessions(settings), env)


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """`--since`: an ISO date or time (UTC unless it says otherwise), or an age: 30m, 12h, 7d, 2w.
    A blank value (an empty CI variable) is an error, not "since forever"."""
    if text is None:
        return None
    now = time.time() if now is None else now
    hint = "use e.g. 2026-11-30, 2026-11-30T08:00, 12h or 7d"
    if not text.strip():
        raise UsageError("--since is empty", hint=hint + ", or leave --since out for every run")
    match = _AGO.match(text.strip())
    try:
        if match:
            delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
            return max(0.0, now - delta.total_seconds())
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return max(0.0, moment.timestamp())
    except (ValueError, OverflowError):
        raise UsageError(f"--since {text!r} is neither a date/time nor an age", hint=hint) from None


def _run_prefix(since: float | None) -> str | None:
    """The smallest run id started at `since` (run ids begin with their UTC start time)."""
    if since is None:
        return None
    return f"{datetime.fromtimestamp(since, tz=UTC):%Y%m%dT%H%M%SZ}"


def _runs(store: LedgerStore, since: float | None) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for run_id in store.run_ids(_run_prefix(since)):
        yield run_id, store.events(run_id)


def history(store: LedgerStore, *, unit: str | None = None, since: float | None = None) -> list[HistoryRow]:
    """Every unit that finished in a run of the repo (only `unit`, only since `since`), oldest first."""
    rows: list[HistoryRow] = []
    for run_id, events in _runs(store, since):
        start = next((e for e in events if e.get("event") == "run_start"), {})
        found = start.get("who")
        who: dict[str, Any] = found if isinstance(found, dict) else {}
        for event in events:
            if event.get("event") != "unit_finish" or (unit is not None and event.get("unit") != unit):
                continue
            ts = float(event.get("ts", 0))
            if since is not None and ts < since:
                continue
            duration = event.get("duration")
            rows.append(
                HistoryRow(
                    ts=ts,
                    run_id=run_id,
                    action=str(event.get("action") or start.get("action", "")),
                    unit=str(event.get("unit")),
                    account=str(event.get("account") or ""),
                    status=str(event.get("status")),
                    duration=float(duration) if isinstance(duration, int | float) else None,
                    digest=str(event.get("digest") or start.get("digests", {}).get(event.get("unit"), "")),
                    actor=str(who.get("actor") or who.get("user") or ""),
                    caller=str(who.get("caller") or ""),
                    job_url=str(who.get("job_url") or ""),
                    commit=str(start.get("git_commit") or ""),
                    branch=str(start.get("git_branch") or ""),
                    host=str(start.get("host") or who.get("host") or ""),
                )
            )
    return sorted(rows, key=lambda r: (r.ts, r.run_id))


@dataclass(frozen=True)
class DriftRow:
    """One unit's drift record over the `refarch drift` runs read: its latest verdict, when it
    last drifted (and how), and when it last came back in sync after a drift."""

    unit: str
    account: str
    status: str  # the latest verdict: in_sync | drifted | failed
    checked: float  # when the latest verdict was made
    last_drifted: float | None = None
    drift_kinds: tuple[str, ...] = ()  # of the last drift: infrastructure, code
    drift_run: str = ""
    back_in_sync: float | None = None  # the first in-sync verdict after its last drift

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "drift_kinds": list(self.drift_kinds),
            "checked": _iso(self.checked),
            "last_drifted": _iso(self.last_drifted),
            "back_in_sync": _iso(self.back_in_sync),
        }


def drift_history(
    store: LedgerStore, *, unit: str | None = None, since: float | None = None
) -> list[DriftRow]:
    """Per unit, from the `drift` events of the ledger (`refarch drift`): its latest verdict,
    when it last drifted and when it last came back in sync; sorted by unit."""
    rows: dict[str, DriftRow] = {}
    for run_id, events in _runs(store, since):
        for event in events:
            path = event.get("unit")
            if event.get("event") != "drift" or not isinstance(path, str) or unit not in (None, path):
                continue
            ts, status = float(event.get("ts", 0)), str(event.get("status"))
            row = rows.get(path) or DriftRow(path, str(event.get("account") or ""), status, ts)
            if status == "drifted":
                kinds = tuple(str(k) for k in event.get("kinds") or ())
                row = replace(row, last_drifted=ts, drift_kinds=kinds, drift_run=run_id, back_in_sync=None)
            elif status == "in_sync" and row.last_drifted is not None and row.back_in_sync is None:
                row = replace(row, back_in_sync=ts)
            rows[path] = replace(row, status=status, checked=ts)
    return [rows[path] for path in sorted(rows)]


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def export_audit(store: LedgerStore, out: Path, *, since: float | None = None) -> int:
    """Write every event of every run (since `since`) to `out` as JSON lines, each with its
    `run_id`, atomically (a reader sees the old file or the new one); returns the count."""
    lines = []
    for run_id, events in _runs(store, since):
        for event in events:
            lines.append(json.dumps({"run_id": run_id, **event}, default=str, sort_keys=True))
    try:
        write_atomic(out, "".join(line + "\n" for line in lines))
    except OSError as exc:
        raise OutputNotWritten("audit export", out, exc.strerror or str(exc)) from None
    except UnsafeLocalState as exc:
        raise OutputNotWritten("audit export", out, exc.message) from None
    return len(lines)
