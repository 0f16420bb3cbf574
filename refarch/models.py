"""Frozen data shared by every layer: units, accounts, repos and plans. No I/O, no logic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from refarch.settings import Settings

JSON = Any  # a value made of dict / list / str / int / float / bool / None


class Action(StrEnum):
    """What can be done to units: planned by `plan()`, the first four run by `run()`."""

    APPLY = "apply"
    PLAN = "plan"
    DESTROY = "destroy"
    OUTPUT = "output"
    VALIDATE = "validate"
    INIT = "init"


RUN_ACTIONS = (Action.APPLY, Action.PLAN, Action.DESTROY, Action.OUTPUT)


class Status(StrEnum):
    """How a unit of a run ended. DONE_BEFORE: a resumed run skipped it (it succeeded earlier)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_RUN = "not_run"
    INTERRUPTED = "interrupted"
    DONE_BEFORE = "done_before"

    @property
    def ok(self) -> bool:
        return self in (Status.SUCCEEDED, Status.DONE_BEFORE)


@dataclass(frozen=True)
class Dependency:
    """A `dependency "name"` block: which unit's outputs this unit reads."""

    name: str
    path: str  # the target unit, relative to the repo root, POSIX form
    enabled: bool = True
    skip_outputs: bool = False
    mock_outputs: Mapping[str, JSON] | None = None
    mock_outputs_allowed_terraform_commands: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RemoteState:
    """The evaluated `remote_state` block."""

    backend: str
    config: Mapping[str, JSON]
    generate: Mapping[str, JSON] | None = None
    disable_init: bool = False


@dataclass(frozen=True)
class Generate:
    """A `generate "name"` block: a file written into the working folder before init."""

    name: str
    path: str
    contents: str
    if_exists: str = "overwrite_terragrunt"
    disable: bool = False


@dataclass(frozen=True)
class Exclude:
    """The `exclude { if, actions, exclude_dependencies }` block (successor of `skip`)."""

    if_: bool
    actions: tuple[str, ...] = ("all",)
    exclude_dependencies: bool = False

    def applies_to(self, action: str) -> bool:
        """True when the block excludes this action (plan/apply/destroy/output...)."""
        if not self.if_:
            return False
        wanted = set(self.actions)
        if f"!{action}" in wanted:
            return False
        if "all_except_output" in wanted:
            return action != "output"
        return "all" in wanted or action in wanted


@dataclass(frozen=True)
class ErrorRule:
    """An `errors { retry "name" {...} }` or `ignore "name" {...}` block of a unit (the older
    retryable_errors / retry_max_attempts / retry_sleep_interval_sec attributes make one retry
    block). Patterns are regexes over the cleaned error text; a leading `!` negates one."""

    kind: str  # "retry" | "ignore"
    name: str
    patterns: tuple[str, ...]
    max_attempts: int = 3  # retry: attempts in all, the first one included
    sleep_seconds: float = 5.0  # retry: fixed wait between attempts
    message: str = ""  # ignore: why it is safe to ignore
    signals: Mapping[str, JSON] = field(default_factory=dict)  # ignore: written for later steps


@dataclass(frozen=True)
class Unit:
    """One folder with a terragrunt.hcl, fully evaluated (dependency outputs mocked or unknown)."""

    path: str  # folder relative to the repo root, POSIX form ("." for the root itself)
    account: str
    account_id: str | None
    region: str | None
    tier: int = 0
    skip: bool = False
    dependencies: tuple[str, ...] = ()  # direct edges: unit paths this unit waits for
    dependency_blocks: tuple[Dependency, ...] = ()
    source: str | None = None
    remote_state: RemoteState | None = None
    inputs: Mapping[str, JSON] = field(default_factory=dict)
    iam_role: str | None = None
    prevent_destroy: bool = False
    exclude: Exclude | None = None
    generate: tuple[Generate, ...] = ()
    terraform: Mapping[str, JSON] = field(default_factory=dict)  # the rest of the terraform block
    locals: Mapping[str, JSON] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # every file read to evaluate the unit, relative to the root
    digest: str = ""  # hash of the bytes of every file read and of the env vars consulted
    external: bool = False  # outside the repo root: reached only as a dependency ("../x")
    errors: tuple[ErrorRule, ...] = ()  # its errors { retry / ignore } blocks
    terraform_binary: str | None = None  # the unit's `terraform_binary` attribute, if set

    def skipped_for(self, action: str) -> bool:
        """True when `skip` or the `exclude` block keeps this unit out of `action`."""
        return self.skip or (self.exclude is not None and self.exclude.applies_to(action))


@dataclass(frozen=True)
class Account:
    """An AWS account of the architecture, from the nearest account.hcl."""

    name: str
    id: str | None
    tier: int
    regions: tuple[str, ...] = ()
    units: tuple[str, ...] = ()


@dataclass(frozen=True)
class Repo:
    """A loaded infrastructure-live repo: every unit, every account, the settings."""

    root: Path
    units: Mapping[str, Unit]  # by path, sorted
    accounts: tuple[Account, ...]
    settings: Settings
    excludes: tuple[str, ...] = ()  # folders listed in .terragrunt-excludes (--queue-excludes-file)
    features: Mapping[str, str] = field(default_factory=dict)  # --feature / TG_FEATURE values
    warnings: tuple[str, ...] = ()  # e.g. a placeholder account id, read as unknown (file:line first)

    def unit(self, path: str) -> Unit:
        """The unit at `path` (relative, POSIX form)."""
        return self.units[path]

    def account(self, name: str) -> Account:
        """The account called `name`."""
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)


@dataclass(frozen=True)
class PlannedUnit:
    """A unit in a plan, with why it sits where it does."""

    path: str
    account: str
    tier: int
    group: int  # index into Plan.groups
    waits_for: tuple[str, ...]  # direct dependencies (reversed for destroy) inside the plan
    assumed: tuple[str, ...] = ()  # dependencies left out by --ignore-dependencies


@dataclass(frozen=True)
class Plan:
    """What one action will run, and in which order.

    `groups` are for display: each group may run in parallel once the earlier groups are done.
    A scheduler should instead start a unit as soon as `ready_after(unit)` are all finished.
    """

    repo: Repo
    action: str
    units: Mapping[str, PlannedUnit]  # in execution order
    groups: tuple[tuple[str, ...], ...]
    tiers: tuple[tuple[str, ...], ...]  # selected units by tier, in execution order
    skipped: tuple[str, ...] = ()
    assumed: tuple[str, ...] = ()  # pulled-out dependencies that are taken as already applied
    external: tuple[str, ...] = ()  # dependencies outside the repo root, not queued
    reasons: Mapping[str, str] = field(default_factory=dict)  # why a skipped unit is skipped
    warnings: tuple[str, ...] = ()  # e.g. an --include that matches nothing

    def ready_after(self, path: str) -> tuple[str, ...]:
        """The units that must finish first: direct dependencies plus every unit of earlier tiers.

        The tier rule is returned as the previous non-empty tier only: it transitively implies
        all earlier tiers, because each tier waits for the one before it.
        """
        planned = self.units[path]
        tier_index = next(i for i, tier in enumerate(self.tiers) if path in tier)
        previous = self.tiers[tier_index - 1] if tier_index > 0 else ()
        return tuple(dict.fromkeys((*planned.waits_for, *previous)))

    def to_json(self) -> dict[str, JSON]:
        """The `refarch plan --json` contract (schemas/plan.schema.json)."""
        return {
            "schema_version": PLAN_SCHEMA_VERSION,
            "action": self.action,
            "groups": [list(g) for g in self.groups],
            "skipped": list(self.skipped),
            "external": list(self.external),
        }


PLAN_SCHEMA_VERSION = 1  # of `refarch plan --json`: schemas/plan.schema.json
REPORT_SCHEMA_VERSION = 1  # of `--report FILE.json`: schemas/report.schema.json


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
    status: Status
    attempts: int = 0
    duration: float = 0.0
    retries: tuple[RetryRecord, ...] = ()
    log_path: str | None = None
    message: str = ""  # why it failed / was not run (already masked)
    blocked_by: str | None = None  # for not_run: the dependency it waited for
    recovery: tuple[str, ...] = ()  # Terraform state files moved to .refarch/recovery/
    changes: Mapping[str, int] | None = None  # what it changed: add, change, destroy (Terraform's count)
    policy: tuple[Mapping[str, str], ...] = ()  # its plan's policy findings, each with its verdict

    @property
    def ok(self) -> bool:
        return self.status.ok


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
    terraform: Mapping[str, str] = field(default_factory=dict)  # the Terraform that ran: path, version

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

    def by_status(self, status: Status) -> tuple[UnitReport, ...]:
        return tuple(u for u in self.units.values() if u.status == status)

    def to_json(self) -> dict[str, Any]:
        """The `--report FILE.json` document (schemas/report.schema.json)."""
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
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
            "terraform": dict(self.terraform),
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
                    "recovery": list(u.recovery),
                    "changes": dict(u.changes) if u.changes is not None else None,
                    **({"policy": [dict(f) for f in u.policy]} if u.policy else {}),
                    **({"outputs": self.outputs[u.path]} if u.path in self.outputs else {}),
                }
                for u in self.units.values()
            ],
        }
