"""The run context: what a run is and how it runs, decided once before any unit starts.

`run()` resolves its arguments (engine, credentials, environment, ledger, retry and policy
rules) into one frozen `RunContext` and hands it down to its steps and to the unit runner,
instead of passing twenty keywords from layer to layer. `Selection` says which units the
run covers and which a resumed run had already done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from refarch.aws import AwsSessions
from refarch.engines import Engine
from refarch.exec.process import Interrupt
from refarch.exec.retry import RetryRule
from refarch.models import Action, Plan, Repo, Unit
from refarch.runner import saved_plans
from refarch.runner.ledger import LedgerStore
from refarch.runner.state_locks import LockReader
from refarch.settings import PolicyRuleSettings, Settings

WORK_DIR = Path(".refarch") / "work"
# Extra environment for a unit's process (e.g. data-store passwords); every value is masked.
ExtraEnv = Callable[[Unit], Mapping[str, str]]


@dataclass(frozen=True)
class RunOptions:
    """How to run: the choices a user makes (the CLI's flags), apart from what and where."""

    parallelism: int = 4
    fail_fast: bool = False
    # "last" (of this action) or a run id: re-run what did not succeed there; "auto": the
    # unfinished run of the same action on the same units at the same commit if there is one,
    # else a fresh run
    resume: str | None = None
    rerun_changed: bool = False  # resume: also re-run units that succeeded and changed since
    source_override: Path | None = None  # --source: modules from this folder
    history: bool = True  # order ready units by earlier runs' durations
    allow_unknown_account: bool = False  # apply/destroy units without an account id (no guard)
    out_dir: Path | None = None  # plan: keep each unit's plan and summaries here (saved_plans)
    plan_dir: Path | None = None  # apply: exactly the plans saved here, refused when stale
    # plan --out-dir: more checks of each saved plan (`refarch drift`), after the policy's
    inspect_plan: saved_plans.PlanInspector | None = None


@dataclass(frozen=True)
class UnitAccess:
    """A unit's credentials as environment variables, and who they say we are."""

    env: Mapping[str, str]
    identity: Mapping[str, str]  # Account, Arn


class UnitCredentials(Protocol):
    """Gives each unit its account's credentials, after the wrong-account guard."""

    def for_unit(self, unit: Unit) -> UnitAccess:
        """Credentials for `unit`; raise WrongAccount if they are for another account."""
        ...


@dataclass(frozen=True)
class RunContext:
    """One run's fixed parts, built once by `run()` (or `recover()`) and passed down.

    Every seam a caller may replace (engine, credentials, sleep, interrupt, environment,
    ledger store) is already resolved here, so no step below has to choose a default.
    """

    plan: Plan
    action: Action
    settings: Settings
    options: RunOptions
    engine: Engine
    credentials: UnitCredentials
    base_env: Mapping[str, str]  # the caller's environment (TG_TF_PATH added for terragrunt)
    interrupt: Interrupt
    sleep: Callable[[float], None]  # between retries
    rand: Callable[[], float]  # retry jitter
    rules: tuple[RetryRule, ...]  # the retry catalogue, `[retry]` first
    store: LedgerStore  # where the ledger goes
    sessions: AwsSessions | None = None  # refarch's own credentials (None: the caller's)
    extra_env: ExtraEnv | None = None
    terraform: Mapping[str, str] = field(default_factory=dict)  # which Terraform, and why
    # Policy: apply refuses a unit whose plan breaks a deny rule not waived; None: a plain
    # apply does not plan first to check (apply --plan-dir does).
    policy_rules: tuple[PolicyRuleSettings, ...] | None = None
    lock_reader: LockReader | None = None  # reads a unit's state lock: release what was left
    # rewrites a unit's state digest to match its state in S3 (a Terraform killed between
    # the two writes); only ever used for a unit of a run known dead
    digest_repair: Callable[[Unit], str | None] | None = None

    @property
    def repo(self) -> Repo:
        """The live repo the plan was made from."""
        return self.plan.repo

    @property
    def work_root(self) -> Path:
        """Where the units' working folders are (`.refarch/work`)."""
        return self.plan.repo.root / WORK_DIR


@dataclass(frozen=True)
class Selection:
    """Which units a run covers: all of the plan's, or those of the run it resumes, less
    those that succeeded there (`done`); with what the resumed run left unfinished."""

    units: tuple[str, ...]
    done: frozenset[str] = frozenset()
    resumed_from: str | None = None
    # the resumed run's units that started and never finished, with their state locks
    unfinished: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    notices: tuple[str, ...] = ()  # said at the start of the run
    plans_id: str | None = None  # apply --plan-dir: which saved plans the run applies

    @property
    def to_run(self) -> list[str]:
        """The units this run starts, in the plan's order."""
        return [p for p in self.units if p not in self.done]
