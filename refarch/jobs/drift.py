"""`refarch drift DIR`: plan every selected unit read-only and say which drifted from the code.

A drift check is a `plan-all --out-dir` run with three differences: every plan runs with
`-lock=false` (through `TF_CLI_ARGS_plan`, so both engines pass it on) under the read-only
role of `[ci] plan_role_name` when set; each saved plan's `terraform show -json` is read
for what differs (`differences`, names only: the values can be secrets); and the verdict
per unit goes to the ledger as one `drift` event, to `drift.json` and `summary.md`.

What differs is of two kinds, and the report says which:
- **infrastructure** drift: Terraform found the object changed outside Terraform (the plan
  document's `resource_drift`), e.g. a bucket's tags edited in the console;
- **code** drift: the code (module, inputs) no longer matches the state, with nothing
  changed outside Terraform: a change merged but not applied yet.

Exit codes follow Terraform's `plan -detailed-exitcode`: 0 every unit in sync, 2 drift
found, 1 could not tell (a plan failed, or an error before any plan, usage errors included).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from refarch.aws import AwsSessions
from refarch.engines import Engine, make_engine
from refarch.events import DriftChecked, RunEvent
from refarch.exec.process import Interrupt
from refarch.files import local_dir, write_atomic
from refarch.jobs.deploy import PlanLoaded, run
from refarch.jobs.notices import StacksGenerated, stacks_first
from refarch.models import Plan, Repo, RunReport, Unit
from refarch.runner.ledger import LedgerStore, new_run_id
from refarch.runner.ledger_dynamodb import store_for
from refarch.runner.run import RunOptions, load_plan
from refarch.runner.saved_plans import SavedPlans, _cell, _code, _timestamp  # the markdown's own escaping
from refarch.settings import Settings

DRIFT_SCHEMA_VERSION = 1
DRIFT_JSON = "drift.json"
SUMMARY_MD = "summary.md"
IN_SYNC, DRIFTED, FAILED = "in_sync", "drifted", "failed"
INFRASTRUCTURE, CODE = "infrastructure", "code"
_QUIET = (["no-op"], ["read"])

__all__ = [
    "DriftEvent",
    "DriftReport",
    "DriftRequest",
    "ResourceDiff",
    "UnitDrift",
    "differences",
    "drift",
    "plan_settings",
]


@dataclass(frozen=True)
class ResourceDiff:
    """One resource that differs: its address, what the plan would do, the kind of drift and
    the names of the attributes that differ (never their values)."""

    address: str
    type: str
    actions: tuple[str, ...]
    kind: str  # infrastructure | code
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnitDrift:
    """One unit's verdict."""

    unit: str
    account: str
    status: str  # in_sync | drifted | failed
    kinds: tuple[str, ...] = ()  # infrastructure, code
    resources: tuple[ResourceDiff, ...] = ()
    outputs: tuple[str, ...] = ()  # root outputs that would change
    message: str = ""  # failed: why it could not tell
    policy: tuple[Mapping[str, str], ...] = ()  # the plan's policy findings (refarch.policy)

    def to_json(self) -> dict[str, Any]:
        resources = [
            {**asdict(r), "actions": list(r.actions), "attributes": list(r.attributes)}
            for r in self.resources
        ]
        lists = {
            "kinds": list(self.kinds),
            "outputs": list(self.outputs),
            "policy": [dict(p) for p in self.policy],
        }
        return {**asdict(self), **lists, "resources": resources}


@dataclass(frozen=True)
class DriftReport:
    """A drift check: the verdict of every selected unit and where the plans are kept."""

    run_id: str  # the drift check's run in the ledger
    plan_run_id: str  # the plan run it made
    created: float
    units: tuple[UnitDrift, ...]
    folder: Path  # the plans, drift.json and summary.md
    duration: float = 0.0
    ledger: str | None = None
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for u in self.units if u.status == status)

    @property
    def exit_code(self) -> int:
        """130 interrupted, else 2 drift found, else 1 when some unit could not be told, else 0."""
        if self.interrupted:
            return 130
        if self.count(DRIFTED):
            return 2
        return 1 if self.count(FAILED) else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": DRIFT_SCHEMA_VERSION,
            "run_id": self.run_id,
            "plan_run_id": self.plan_run_id,
            "created": _timestamp(self.created),
            "duration": round(self.duration, 3),
            "exit_code": self.exit_code,
            "counts": {s: self.count(s) for s in (IN_SYNC, DRIFTED, FAILED)},
            "units": [u.to_json() for u in self.units],
        }

    def markdown(self) -> str:
        """The job summary / issue text: drifted units with what differs, then the rest."""
        counts = f"{self.count(DRIFTED)} drifted, {self.count(IN_SYNC)} in sync, {self.count(FAILED)} failed"
        lines = [f"### refarch drift: {counts}", ""]
        drifted = [u for u in self.units if u.status == DRIFTED]
        if drifted:
            lines += [
                "| unit | account | drift | resource | plan | attributes |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            for unit in drifted:
                for diff in unit.resources:
                    lines.append(
                        f"| {_code(unit.unit)} | {_cell(unit.account)} | {diff.kind} | {_code(diff.address)} "
                        f"| {'/'.join(diff.actions)} | {_cell(', '.join(diff.attributes))} |"
                    )
                if unit.outputs:
                    lines.append(
                        f"| {_code(unit.unit)} | {_cell(unit.account)} | {CODE} | outputs | update "
                        f"| {_cell(', '.join(unit.outputs))} |"
                    )
            lines.append("")
        failed = [u for u in self.units if u.status == FAILED]
        if failed:
            lines.append(f"**Could not tell ({len(failed)}):**")
            lines += [f"- {_code(u.unit)} ({_cell(u.account)}): {_cell(_first(u.message))}" for u in failed]
            lines.append("")
        in_sync = [u for u in self.units if u.status == IN_SYNC]
        if in_sync:
            lines += [f"<details><summary>{len(in_sync)} unit(s) in sync</summary>", ""]
            lines += [f"- {_code(u.unit)} ({_cell(u.account)})" for u in in_sync]
            lines += ["", "</details>", ""]
        lines.append(
            "infrastructure: changed outside Terraform; code: the code differs from what was applied. "
            f"Run `{self.run_id}` (plans: run `{self.plan_run_id}`)."
        )
        return "\n".join(lines) + "\n"


# -- pure: what a plan says ------------------------------------------------------------------
def differences(document: Mapping[str, Any]) -> dict[str, Any]:
    """What differs in a `terraform show -json PLANFILE` document, value-free: each managed
    resource the plan would change (infrastructure drift when Terraform saw it changed outside
    Terraform, `resource_drift`; else code drift), each drifted resource the plan leaves as
    it is (ignore_changes), and the root outputs that would change."""
    drifted: dict[str, Mapping[str, Any]] = {}
    for item in document.get("resource_drift") or ():
        change = _change(item)
        if item.get("mode", "managed") == "managed" and list(change.get("actions") or ()) not in _QUIET:
            drifted[str(item.get("address"))] = item
    resources: list[ResourceDiff] = []
    for item in document.get("resource_changes") or ():
        change = _change(item)
        actions = list(change.get("actions") or ())
        if item.get("mode", "managed") != "managed" or actions in _QUIET or not actions:
            continue
        address = str(item.get("address"))
        seen = drifted.pop(address, None)
        source = _change(seen) if seen is not None else change  # drift: what changed outside
        resources.append(
            ResourceDiff(
                address,
                str(item.get("type")),
                tuple(actions),
                INFRASTRUCTURE if seen is not None else CODE,
                _attributes(source.get("before"), source.get("after")),
            )
        )
    for address, item in drifted.items():  # changed outside Terraform, and the code does not mind
        change = _change(item)
        resources.append(
            ResourceDiff(
                address,
                str(item.get("type")),
                ("no-op",),
                INFRASTRUCTURE,
                _attributes(change.get("before"), change.get("after")),
            )
        )
    outputs = sorted(
        str(name)
        for name, change in (document.get("output_changes") or {}).items()
        if isinstance(change, Mapping) and list(change.get("actions") or ()) not in _QUIET
    )
    return {"resources": [asdict(r) for r in resources], "outputs": outputs}


def verdict(unit: Unit, ok: bool, message: str, summary: Mapping[str, Any] | None) -> UnitDrift:
    """A unit's verdict from its plan run's outcome and its saved plan summary."""
    if not ok:
        return UnitDrift(unit.path, unit.account, FAILED, message=message or "the plan failed")
    found = summary.get("drift") if summary else None
    if not isinstance(found, Mapping):
        return UnitDrift(unit.path, unit.account, FAILED, message="no plan document was saved")
    resources = tuple(
        ResourceDiff(
            str(r["address"]), str(r["type"]), tuple(r["actions"]), str(r["kind"]), tuple(r["attributes"])
        )
        for r in found.get("resources") or ()
    )
    outputs = tuple(found.get("outputs") or ())
    kinds = {r.kind for r in resources}
    if outputs and INFRASTRUCTURE not in kinds:
        kinds.add(CODE)
    policy = tuple(summary.get("policy") or ()) if summary else ()
    status = DRIFTED if resources or outputs else IN_SYNC
    order = (INFRASTRUCTURE, CODE)
    return UnitDrift(
        unit.path,
        unit.account,
        status,
        tuple(k for k in order if k in kinds),
        resources,
        outputs,
        policy=policy,
    )


# -- the job ---------------------------------------------------------------------------------
def plan_settings(settings: Settings) -> Settings:
    """The settings plans run under: the read-only role `[ci] plan_role_name` when set."""
    role = settings.ci.plan_role_name
    return replace(settings, role_name=role) if role else settings


def read_only_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with `-lock=false` added to Terraform's own arguments for `plan`
    (TF_CLI_ARGS_plan, kept after the user's own)."""
    base = dict(env)
    base["TF_CLI_ARGS_plan"] = f"{base.get('TF_CLI_ARGS_plan', '')} -lock=false".strip()
    return base


@dataclass(frozen=True)
class DriftRequest:
    """What to check and how (the CLI's options)."""

    directory: str | Path
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    ignore_dependencies: bool = False  # with include: dependencies' outputs read, not planned
    out_dir: Path | None = None  # default: <repo>/.refarch/drift
    parallelism: int = 4
    endpoint_url: str | None = None
    engine: Engine | str | None = None  # an engine, or its name: terragrunt | terraform
    env: Mapping[str, str] | None = None
    repo_options: Mapping[str, Any] = field(default_factory=dict)  # hidden, excludes_file, features
    generate_stacks: bool = True  # generate terragrunt.stack.hcl files first


DriftEvent = StacksGenerated | PlanLoaded | RunEvent  # run events include one DriftChecked a unit
DriftEventCallback = Callable[[DriftEvent], None]


def drift(
    request: DriftRequest,
    *,
    on_event: DriftEventCallback | None = None,
    interrupt: Interrupt | None = None,
    plan: Plan | None = None,
    settings: Settings | None = None,
    sessions: AwsSessions | None = None,
) -> DriftReport:
    """Plan every selected unit read-only and classify it (in sync, drifted, failed); one
    `drift` event per unit in the ledger, drift.json and summary.md in the out folder. The
    stacks are generated first and the plan is loaded (both sent as events) unless `plan`
    is given."""
    emit: DriftEventCallback = on_event or (lambda event: None)
    env = dict(os.environ if request.env is None else request.env)
    if plan is None:
        stacks_first(request.directory, request.generate_stacks, emit)
        plan = _load_plan(request, env)
    emit(PlanLoaded(plan))
    settings = plan_settings(settings or plan.repo.settings)
    sessions = sessions or AwsSessions(settings)
    started = time.time()
    folder = Path(request.out_dir) if request.out_dir else local_dir(plan.repo.root, "drift")
    report = _plan_all(request, plan, settings, sessions, folder, emit, interrupt, env)
    saved = SavedPlans(folder.absolute(), "")
    units = tuple(
        verdict(plan.repo.units[path], r.status.ok, r.message, saved.load(path) if r.status.ok else None)
        for path, r in report.units.items()
    )
    result = _record(
        plan.repo, report, units, started, saved.folder, store_for(plan.repo, settings, sessions, env), emit
    )
    write_atomic(saved.folder / DRIFT_JSON, json.dumps(result.to_json(), indent=2) + "\n")
    write_atomic(saved.folder / SUMMARY_MD, result.markdown())
    return result


def _load_plan(request: DriftRequest, env: Mapping[str, str]) -> Plan:
    return load_plan(
        request.directory,
        "plan",
        include=request.include,
        exclude=request.exclude,
        ignore_dependencies=request.ignore_dependencies,
        endpoint_url=request.endpoint_url,
        env=env,
        repo_options=request.repo_options,
    )


def _plan_all(
    request: DriftRequest,
    plan: Plan,
    settings: Settings,
    sessions: AwsSessions,
    folder: Path,
    emit: DriftEventCallback,
    interrupt: Interrupt | None,
    env: Mapping[str, str],
) -> RunReport:
    """The read-only `plan-all --out-dir FOLDER` run, each saved plan read for what differs."""
    engine = request.engine
    if isinstance(engine, str):
        engine = make_engine(engine, plan.repo.settings)
    return run(
        plan,
        "plan",
        settings,
        options=RunOptions(
            parallelism=request.parallelism,
            out_dir=folder,
            inspect_plan=lambda _unit, document: {"drift": differences(document)},
        ),
        engine=engine,
        on_event=emit,
        sessions=sessions,
        interrupt=interrupt,
        base_env=read_only_env(env),
    )


def _record(
    repo: Repo,
    report: RunReport,
    units: tuple[UnitDrift, ...],
    started: float,
    folder: Path,
    store: LedgerStore,
    emit: DriftEventCallback,
) -> DriftReport:
    """The drift check as its own run in the ledger: its start, one `drift` event a unit
    (each also sent as DriftChecked), its finish; returns the report."""
    run_id = new_run_id()
    ledger = store.open(run_id)
    try:
        ledger.write(
            "run_start",
            run_id=run_id,
            action="drift",
            plan_run=report.run_id,
            units=[u.unit for u in units],
            digests={u.unit: repo.units[u.unit].digest for u in units},
        )
        for unit in units:
            ledger.write("drift", **_drift_event(unit), plan_run=report.run_id)
            emit(DriftChecked(unit.unit, unit.account, unit.status, unit.kinds, len(unit.resources)))
        result = DriftReport(
            run_id,
            report.run_id,
            started,
            units,
            folder,
            duration=time.time() - started,
            ledger=ledger.location,
            interrupted=report.interrupted,
        )
        ledger.write(
            "run_finish",
            counts={s: result.count(s) for s in (IN_SYNC, DRIFTED, FAILED)},
            exit_code=result.exit_code,
            duration=round(result.duration, 3),
        )
    finally:
        ledger.close()
    return result


def _drift_event(unit: UnitDrift) -> dict[str, Any]:
    """A unit's `drift` event in the ledger (names only, never values)."""
    return {
        "unit": unit.unit,
        "account": unit.account,
        "status": unit.status,
        "kinds": list(unit.kinds),
        "resources": [
            {"address": r.address, "actions": list(r.actions), "kind": r.kind} for r in unit.resources
        ],
        "outputs": list(unit.outputs),
        "message": _first(unit.message),
    }


def _change(item: Mapping[str, Any] | None) -> Mapping[str, Any]:
    change = item.get("change") if isinstance(item, Mapping) else None
    return change if isinstance(change, Mapping) else {}


def _attributes(before: Any, after: Any) -> tuple[str, ...]:
    """The top-level attribute names whose values differ (names only: values can be secrets)."""
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return ()
    return tuple(sorted(k for k in {*before, *after} if before.get(k) != after.get(k)))


def _first(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""
