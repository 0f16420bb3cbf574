"""The run ledger: one JSON event per line in .refarch/runs/<run-id>.jsonl, for audit and resume.

Each event is appended and flushed on its own, so a crash loses at most the line being
written; a reader skips a torn, non-UTF-8 or wrong-shaped line with a warning naming it.
A LedgerStore is where the ledgers of a repo live: this folder (LocalLedgerStore, the
default) or a DynamoDB table every runner shares (ledger_dynamodb.py); resume, history and
the scheduler's durations read through it.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from refarch import files
from refarch.errors import RefarchWarning, UnreadableFile, UsageError
from refarch.models import Plan, Status

RUNS_DIR = Path(".refarch") / "runs"
# Every event carries it, so each line reads on its own: schemas/ledger-event.schema.json.
LEDGER_SCHEMA_VERSION = 1
MAX_LEDGER_BYTES = 256 * 1024 * 1024
# The fields resume and the scheduler read, with the types they must have.
_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "run_start": {"run_id": str, "action": str, "units": list, "digests": dict},
    "unit_finish": {"unit": str, "status": str},
    "unit_start": {"unit": str},
}


def runs_dir(root: Path) -> Path:
    """Where a repo's ledgers live."""
    return root / RUNS_DIR


def new_run_id(now: float | None = None) -> str:
    """A sortable, unique id: UTC time to the millisecond plus a random suffix."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    # Milliseconds too: ids sort in the order runs started, even two in one second ("last").
    return f"{stamp:%Y%m%dT%H%M%S}{stamp.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


class Ledger:
    """An append-only JSONL file of one run's events. Thread-safe; owner-readable only."""

    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        files.check_local_parent(path)  # the runs folder is ours alone, or UnsafeLocalState
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    @property
    def location(self) -> str:
        """Where the run's history is, for the report and messages."""
        return str(self.path)

    def attach_log(self, unit: str, path: Path) -> str | None:
        """A local ledger keeps the unit's log where it is: nothing to upload."""
        return None

    def write(self, event: str, **fields: Any) -> None:
        """Append one event and flush it to the OS."""
        record = {
            "schema_version": LEDGER_SCHEMA_VERSION,
            "ts": round(self._clock(), 3),
            "event": event,
            **fields,
        }
        line = json.dumps(record, default=str, sort_keys=False)
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete event of a ledger. A line that is torn (a crash), not UTF-8, not a
    JSON object or of the wrong shape is skipped with a RefarchWarning naming file and line."""
    files.check_local_parent(path, create=False)
    try:
        data = files.read_bounded(path, limit=MAX_LEDGER_BYTES)
    except UnreadableFile as exc:
        raise UsageError(str(exc), hint="move the ledger aside; a new run writes a new one") from None
    events = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        problem = None
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            problem = "not UTF-8 text"
        except json.JSONDecodeError:
            problem = "not a complete JSON line (torn by a crash?)"
        else:
            problem = shape_problem(record)
        if problem is not None:
            warnings.warn(f"{path}:{number}: ledger line skipped: {problem}", RefarchWarning, stacklevel=2)
            continue
        events.append(record)
    return events


def shape_problem(record: Any) -> str | None:
    """Why a parsed ledger record (a local line, a shared table's item) is not an event
    refarch wrote, or None."""
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        return "not an event (a JSON object with an `event` name)"
    for name, kind in _FIELDS.get(record["event"], {}).items():
        if name in record and not isinstance(record[name], kind):
            return f"`{name}` of a {record['event']} event is not a {getattr(kind, '__name__', kind)}"
    if record["event"] == "unit_finish" and not {"unit", "status"} <= record.keys():
        return "a unit_finish event without unit and status"
    if record["event"] == "run_start":
        if not {"run_id", "action"} <= record.keys():
            return "a run_start event without run_id and action"
        if not all(isinstance(u, str) for u in record.get("units", [])):
            return "`units` of a run_start event is not a list of unit paths"
        if not all(isinstance(d, str) for d in record.get("digests", {}).values()):
            return "`digests` of a run_start event is not a map of digests"
    ts = record.get("ts", 0)
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts) or ts < 0:
        return f"its `ts` {ts!r} is not a time (seconds since 1970)"
    return None


@dataclass(frozen=True)
class PastRun:
    """What a ledger says about a finished (or crashed) run, as much as resume needs."""

    run_id: str
    path: Path | str  # the local ledger file, or where the shared ledger keeps the run
    action: str
    units: tuple[str, ...]
    digests: Mapping[str, str]
    succeeded: frozenset[str]
    statuses: Mapping[str, str]
    unfinished: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # unit -> unit_start


class LedgerWriter(Protocol):
    """One run's ledger as the runner writes it (Ledger, or the shared DynamoDB ledger)."""

    @property
    def location(self) -> str: ...

    def write(self, event: str, **fields: Any) -> None: ...

    def attach_log(self, unit: str, path: Path) -> str | None: ...

    def close(self) -> None: ...


class LedgerStore(Protocol):
    """Where a repo's ledgers live: every run's events, by run id (ids sort by start time)."""

    @property
    def name(self) -> str:
        """local | dynamodb"""
        ...

    def open(self, run_id: str) -> LedgerWriter:
        """A writer for a new run."""
        ...

    def find(self, ref: str) -> str:
        """The run id of `ref` ("last" = the newest run); UsageError when unknown."""
        ...

    def run_ids(self, since: str | None = None) -> list[str]:
        """Every run id, oldest first; only those started at or after `since` (a run id prefix)."""
        ...

    def events(self, run_id: str) -> list[dict[str, Any]]:
        """Every event of run `run_id`, in the order written."""
        ...

    def location(self, run_id: str) -> Path | str:
        """Where run `run_id` is kept, for messages."""
        ...


@dataclass(frozen=True)
class LocalLedgerStore:
    """The default store: one JSONL file per run under `<repo>/.refarch/runs/`."""

    root: Path
    name: str = "local"

    def open(self, run_id: str) -> LedgerWriter:
        return Ledger(runs_dir(self.root) / f"{run_id}.jsonl")

    def find(self, ref: str) -> str:
        return find_ledger(self.root, ref).stem

    def run_ids(self, since: str | None = None) -> list[str]:
        folder = runs_dir(self.root)
        ids = sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []
        return [i for i in ids if since is None or i >= since]

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return read_events(find_ledger(self.root, run_id))

    def location(self, run_id: str) -> Path | str:
        return runs_dir(self.root) / f"{run_id}.jsonl"


def past_durations(
    root: Path, action: str, *, runs: int = 5, store: LedgerStore | None = None
) -> dict[str, float]:
    """How long each unit took when it last succeeded, from the newest `runs` ledgers of
    `action`: the scheduler starts the longest remaining path first with it."""
    chosen: LedgerStore = store or LocalLedgerStore(root)
    durations: dict[str, float] = {}
    seen = 0
    for run_id in reversed(chosen.run_ids()):
        events = chosen.events(run_id)
        if not events or events[0].get("event") != "run_start" or events[0].get("action") != action:
            continue
        for event in events:
            unit, duration = event.get("unit"), event.get("duration")
            if (
                event.get("event") == "unit_finish"
                and event.get("status") == Status.SUCCEEDED
                and isinstance(unit, str)
                and isinstance(duration, int | float)
            ):
                durations.setdefault(unit, float(duration))
        seen += 1
        if seen >= runs:
            break
    return durations


def find_ledger(root: Path, ref: str) -> Path:
    """The ledger of run `ref` ("last" = the most recent run of this repo)."""
    folder = runs_dir(root)
    if ref == "last":
        ledgers = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
        if not ledgers:
            raise UsageError(f"no earlier run to resume in {folder}", hint="run without --resume first")
        return ledgers[-1]
    path = folder / f"{ref}.jsonl"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []
        raise UsageError(
            f"no run {ref!r} in {folder}",
            hint=f"known runs: {', '.join(known[-5:])}" if known else "run without --resume first",
        )
    return path


def load_run(root: Path, ref: str, *, store: LedgerStore | None = None) -> PastRun:
    """Read the ledger of run `ref` into a PastRun (from `store`, default the local one)."""
    chosen: LedgerStore = store or LocalLedgerStore(root)
    run_id = chosen.find(ref)
    path = chosen.location(run_id)
    events = chosen.events(run_id)
    start = next((e for e in events if e.get("event") == "run_start"), None)
    if start is None:
        raise UsageError(
            f"{path} has no run_start event; it cannot be resumed", hint="start a new run without --resume"
        )
    statuses = {e["unit"]: e["status"] for e in events if e.get("event") == "unit_finish" and "unit" in e}
    succeeded = frozenset(u for u, s in statuses.items() if s in (Status.SUCCEEDED, Status.DONE_BEFORE))
    started = {e["unit"]: e for e in events if e.get("event") == "unit_start" and "unit" in e}
    unfinished = {unit: event for unit, event in started.items() if unit not in statuses}
    return PastRun(
        run_id=str(start["run_id"]),
        path=path,
        action=str(start["action"]),
        units=tuple(start.get("units", ())),
        digests=dict(start.get("digests", {})),
        succeeded=succeeded,
        statuses=statuses,
        unfinished=unfinished,
    )


# -- who ran it ---------------------------------------------------------------------------


def ci_context(env: Mapping[str, str]) -> dict[str, str]:
    """Who and where from the CI's own variables (GitHub Actions, GitLab CI): the actor, the
    job's URL, the branch and the commit; empty outside CI."""
    found: dict[str, str] = {}
    if env.get("GITHUB_ACTIONS") or env.get("GITHUB_RUN_ID"):
        found["ci"] = "github"
        server, repository, run = (
            env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
        )
        if repository and run:
            found["job_url"] = f"{server or 'https://github.com'}/{repository}/actions/runs/{run}"
        found["actor"] = env.get("GITHUB_ACTOR", "")
        found["branch"] = env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME", "")
        found["commit"] = env.get("GITHUB_SHA", "")
    elif env.get("GITLAB_CI") or env.get("CI_JOB_URL"):
        found["ci"] = "gitlab"
        found["job_url"] = env.get("CI_JOB_URL", "")
        found["actor"] = env.get("GITLAB_USER_LOGIN", "")
        found["branch"] = env.get("CI_COMMIT_REF_NAME", "")
        found["commit"] = env.get("CI_COMMIT_SHA", "")
    return {k: v for k, v in found.items() if v}


def last_of_action(store: LedgerStore, action: str) -> str:
    """`--resume last`: the newest run of `action` (a plan-all is never resumed as an apply)."""
    for run_id in reversed(store.run_ids()):
        events = store.events(run_id)
        if events and events[0].get("event") == "run_start" and events[0].get("action") == action:
            return run_id
    raise UsageError(f"no earlier {action} run to resume", hint="run without --resume first")


@dataclass(frozen=True)
class ResumeSelection:
    """What a resumed run skips, and the units that succeeded then and changed since."""

    done: frozenset[str]  # succeeded in the past run and unchanged (or kept): not run again
    changed: tuple[str, ...] = ()  # succeeded in the past run, their files changed since
    rerun: tuple[str, ...] = ()  # of `changed`, those run again (rerun_changed)


def resume_verb(action: str) -> str:
    """The CLI verb that runs `action` (plan is `plan-all`; `refarch plan` shows the order)."""
    return "plan-all" if action == "plan" else action


def resume_selection(past: PastRun, plan: Plan, *, rerun_changed: bool = False) -> ResumeSelection:
    """Which units of `past` may be skipped now.

    A unit that did not succeed runs again, with its configuration as it is now (the fix).
    A unit that succeeded and whose files changed since is listed in `changed`; it is run
    again only with `rerun_changed`, else skipped as done. Units no longer in the plan are
    ignored.
    """
    if past.action != plan.action:
        raise UsageError(
            f"run {past.run_id} was `{past.action}`, not `{plan.action}`",
            hint=f"resume it with `refarch {resume_verb(past.action)} DIR --resume {past.run_id}`",
        )
    changed = tuple(
        path
        for path in past.units
        if path in past.succeeded
        and path in plan.units
        and plan.repo.units[path].digest != past.digests.get(path, "")
    )
    done = past.succeeded - set(changed) if rerun_changed else past.succeeded
    return ResumeSelection(
        done=frozenset(done & set(plan.units)),
        changed=changed,
        rerun=changed if rerun_changed else (),
    )
