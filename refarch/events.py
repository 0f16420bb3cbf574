"""The typed events a run emits for its caller to render (the library itself never prints).

A caller passes `on_event=` and matches on the class. Events arrive one at a time, never
concurrently, in the order they happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from refarch.models import Action, RunReport, Status


@dataclass(frozen=True)
class RunStarted:
    """The run has its id, its units and its ledger; nothing has started yet."""

    run_id: str
    action: Action
    engine: str
    units: tuple[str, ...]
    done_before: tuple[str, ...]  # succeeded in the run being resumed: not run again
    ledger: str
    identities: Mapping[str, Mapping[str, str]]  # per account: Account, Arn (or error)
    terraform: Mapping[str, str] = field(default_factory=dict)  # path, version, source


@dataclass(frozen=True)
class RunNotice:
    """Something the user should know that is no failure (a lock taken over, a file set aside)."""

    text: str
    unit: str | None = None


@dataclass(frozen=True)
class AccountLockTrouble:
    """A heartbeat of an account lock failed, or the lock is lost (`lost`: another run holds
    it now, or it was released); with `unit`, the run refused to start it and starts nothing
    more."""

    account: str
    reason: str
    lost: bool
    unit: str | None = None


@dataclass(frozen=True)
class UnitStarted:
    """A unit's first attempt is about to start."""

    unit: str
    account: str
    log: str


@dataclass(frozen=True)
class UnitOutput:
    """One line a unit's tool printed, secrets already masked."""

    unit: str
    stream: str  # "stdout" | "stderr"
    text: str


@dataclass(frozen=True)
class UnitRetried:
    """An attempt failed in a way a retry rule knows; the next starts after `delay` seconds."""

    unit: str
    attempt: int
    attempts: int  # the rule's maximum
    rule: str
    delay: float
    remedy: str | None


@dataclass(frozen=True)
class UnitFinished:
    """How a unit ended (also for units that never started: not_run, done_before)."""

    unit: str
    status: Status
    message: str
    attempts: int
    duration: float
    log: str | None
    blocked_by: str | None = None


@dataclass(frozen=True)
class DriftChecked:
    """`refarch drift`: one unit's verdict (its `drift` ledger event), after the plans ran."""

    unit: str
    account: str
    status: str  # in_sync | drifted | failed
    kinds: tuple[str, ...]  # infrastructure, code
    resources: int  # how many resources differ


@dataclass(frozen=True)
class RunFinished:
    """The run is over; the report is also what `run()` returns."""

    report: RunReport


RunEvent = (
    RunStarted
    | RunNotice
    | AccountLockTrouble
    | UnitStarted
    | UnitOutput
    | UnitRetried
    | UnitFinished
    | DriftChecked
    | RunFinished
)
RunEventCallback = Callable[[RunEvent], None]
