"""The run verbs as a library: `deploy` (what `refarch apply|plan-all|destroy|output` do) and
`run` (a plan run with refarch's own policies: the public `refarch.run`).

The run layer knows nothing of bootstrap; here the data-store passwords that bootstrap keeps
in each account reach the units whose module declares them, as `TF_VAR_<name>`. The CLI
only parses its flags into a `DeployRequest` and renders the events and the result.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from refarch import graph
from refarch.aws import AwsSessions
from refarch.engines import Engine, make_engine
from refarch.errors import OutputNotWritten, RefarchError, UsageError
from refarch.events import RunEvent, RunEventCallback
from refarch.exec.process import Interrupt
from refarch.jobs.changed import changed_selection
from refarch.jobs.notices import ChangesFound, NothingToRun, StacksGenerated
from refarch.jobs.preflight import PreflightFailed, PreflightReport, preflight
from refarch.jobs.stacks import generate_stacks
from refarch.models import Action, Plan, RunReport
from refarch.planner import dependents_outside
from refarch.provision.passwords import password_provider
from refarch.repo import load_repo
from refarch.runner import saved_plans
from refarch.runner.report import write_report
from refarch.runner.run import RunOptions, load_plan
from refarch.runner.run import run as run_plan
from refarch.runner.unit import ExtraEnv, UnitCredentials
from refarch.settings import Settings

CHANGING = frozenset({"apply", "destroy"})  # what asks for consent and guards accounts


class ConsentRefused(RefarchError):
    """The consent callback said no: nothing was started."""

    exit_code = 1


def run(
    plan: Plan,
    action: Action | str | None = None,
    settings: Settings | None = None,
    *,
    options: RunOptions | None = None,
    engine: Engine | None = None,
    on_event: RunEventCallback | None = None,
    sessions: AwsSessions | None = None,
    credentials: UnitCredentials | None = None,
    extra_env: ExtraEnv | None = None,
    secrets: Iterable[str] = (),
    sleep: Callable[[float], None] | None = None,
    interrupt: Interrupt | None = None,
    base_env: Mapping[str, str] | None = None,
) -> RunReport:
    """Run `action` on every unit of `plan` (see `refarch.runner.run.run`), each unit with
    its account's credentials and, unless `extra_env` is given, bootstrap's passwords."""
    settings = settings or plan.repo.settings
    if credentials is None and sessions is None:
        sessions = AwsSessions(settings)
    if extra_env is None and sessions is not None:
        extra_env = password_provider(replace(plan.repo, settings=settings), sessions)
    return run_plan(
        plan,
        action,
        settings,
        options=options or RunOptions(),
        engine=engine,
        on_event=on_event,
        sessions=sessions,
        credentials=credentials,
        extra_env=extra_env,
        secrets=secrets,
        sleep=sleep,
        interrupt=interrupt,
        base_env=base_env,
    )


# -- the run verbs as one job: what `refarch apply|plan-all|destroy|output` decide -------------


@dataclass(frozen=True)
class DeployRequest:
    """One run verb on a live repo, as the flags of `refarch apply` and its siblings say it."""

    directory: str | Path
    action: Action | str  # apply, plan (plan-all), destroy, output
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ignore_dependencies: bool = False
    with_dependencies: bool = False
    queue_include_external: bool = False
    endpoint_url: str | None = None
    profile: str | None = None
    hidden: bool = True  # look for units in hidden folders
    excludes_file: Path | None = None  # --queue-excludes-file
    features: Mapping[str, str] = field(default_factory=dict)  # --feature NAME=VALUE
    generate_stacks: bool = True  # generate terragrunt.stack.hcl files first
    changed_since: str | None = None  # a git ref, or `deployed`
    planned_only: bool = False  # with plan_dir: only the units with a saved plan there
    plan_dir: Path | None = None
    out_dir: Path | None = None
    parallelism: int = 4
    resume: str | None = None
    rerun_changed: bool = False
    fail_fast: bool = False
    allow_unknown_account: bool = False
    allow_broken_dependents: bool = False
    source: Path | None = None  # modules from this local folder
    engine: str | None = None  # terragrunt or terraform (None: terragrunt when on PATH)
    tf_path: str | None = None  # the Terraform binary, over `[engine] terraform_binary`
    non_interactive: bool = False  # consent given up front (--non-interactive / --yes)
    preflight: bool = True  # apply: check referenced AWS resources first
    report_path: Path | None = None  # --report: the run report also written here (JSON, 0600)


@dataclass(frozen=True)
class PlanLoaded:
    """The plan, before consent: its warnings and the units it skips."""

    plan: Plan


@dataclass(frozen=True)
class DependentsOutside:
    """A partial destroy: units outside the selection that depend on what it destroys."""

    action: str
    outside: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class PreflightChecked:
    """apply's preflight (the run does not start when the report is not ok)."""

    report: PreflightReport


@dataclass(frozen=True)
class RunStarting:
    """Consent given and preflight passed: the run starts now (run events follow)."""

    plan: Plan


DeployEvent = (
    StacksGenerated
    | ChangesFound
    | NothingToRun
    | PlanLoaded
    | DependentsOutside
    | PreflightChecked
    | RunStarting
    | RunEvent
)
DeployEventCallback = Callable[[DeployEvent], None]
ConsentCallback = Callable[[Plan, str], bool]  # (plan, action) -> go ahead?


@dataclass(frozen=True)
class DeployResult:
    """The plan that ran and its report; both None when there was nothing to run."""

    plan: Plan | None
    report: RunReport | None
    # --report could not be written (the run's exit code stands)
    report_not_written: OutputNotWritten | None = field(default=None, kw_only=True)

    @property
    def exit_code(self) -> int:
        return 0 if self.report is None else self.report.exit_code


def deploy(
    request: DeployRequest,
    *,
    confirm: ConsentCallback | None = None,
    on_event: DeployEventCallback | None = None,
    interrupt: Interrupt | None = None,
) -> DeployResult:
    """What `refarch apply|plan-all|destroy|output DIR` does: generate stacks, narrow to
    --planned-only / --changed-since, plan, ask consent (apply, destroy), preflight (apply),
    then run with feature flags and the chosen engine. `confirm(plan, action)` is asked unless
    `request.non_interactive`; without it, consent must be given up front."""
    emit: DeployEventCallback = on_event or (lambda event: None)
    if request.generate_stacks:
        emit(StacksGenerated(generate_stacks(request.directory)))
    narrowed = _narrowed(request, emit)
    if narrowed is None:
        return DeployResult(None, None)
    plan = _load_plan(narrowed)
    emit(PlanLoaded(plan))
    if not plan.units:
        emit(NothingToRun("selection", f"{narrowed.action}: no unit selected"))
        return DeployResult(plan, None)
    _consent(narrowed, plan, confirm, emit)  # first: nobody waits through the preflight to be asked
    if narrowed.action == "apply" and narrowed.preflight:
        report = preflight(plan, plan.repo.settings)
        emit(PreflightChecked(report))
        if not report.ok:
            raise PreflightFailed(report)
    emit(RunStarting(plan))
    ran = _run(narrowed, plan, emit, interrupt)
    return DeployResult(plan, ran, report_not_written=_write_report(ran, narrowed.report_path))


def _write_report(report: RunReport, path: Path | None) -> OutputNotWritten | None:
    """--report: the run is over whatever happens here, so a report that cannot be written
    is returned for the caller to show after the run's summary, never raised over it."""
    if path is None:
        return None
    try:
        write_report(report, Path(path))
    except OutputNotWritten as exc:
        return exc
    return None


def _narrowed(request: DeployRequest, emit: DeployEventCallback) -> DeployRequest | None:
    """The request narrowed by --planned-only then --changed-since; None: nothing to run."""
    if request.planned_only:
        planned = _planned_only(request)
        if planned is None:
            emit(NothingToRun("planned", f"no saved plan in {request.plan_dir}: nothing to apply"))
            return None
        request = planned
    if request.changed_since:
        change, include, exclude = changed_selection(
            load_repo(request.directory), request.changed_since, request.include, request.exclude
        )
        emit(ChangesFound(change))
        if not include:
            message = f"nothing changed since {request.changed_since}: no unit to run"
            emit(NothingToRun("changed", message))
            return None
        request = replace(request, include=tuple(include), exclude=tuple(exclude), ignore_dependencies=True)
    return request


def _planned_only(request: DeployRequest) -> DeployRequest | None:
    """--planned-only: the selected units with a saved plan in --plan-dir; None when none."""
    if request.plan_dir is None:
        raise UsageError(
            "--planned-only goes with --plan-dir", hint="apply --plan-dir PLANDIR --planned-only"
        )
    planned = saved_plans.planned_units(Path(request.plan_dir))
    if request.include:
        planned = [p for p in planned if graph.matches(p, request.include)]
    if not planned:
        return None
    # a planned folder also matches the units nested below it: leave out those not planned
    units = load_repo(request.directory).units
    nested = [p for p in units if p not in planned and any(p.startswith(s + "/") for s in planned)]
    exclude = (*request.exclude, *nested)
    return replace(request, include=tuple(planned), exclude=exclude, ignore_dependencies=True)


def _load_plan(request: DeployRequest) -> Plan:
    return load_plan(
        request.directory,
        str(request.action),
        include=request.include,
        exclude=request.exclude,
        ignore_dependencies=request.ignore_dependencies,
        endpoint_url=request.endpoint_url,
        profile=request.profile,
        queue_include_external=request.queue_include_external,
        with_dependencies=request.with_dependencies,
        repo_options={
            "hidden": request.hidden,
            "excludes_file": request.excludes_file,
            "features": dict(request.features),
        },
        allow_unknown_account=request.allow_unknown_account,
    )


def _consent(
    request: DeployRequest, plan: Plan, confirm: ConsentCallback | None, emit: DeployEventCallback
) -> None:
    """Consent is explicit (as Terraform refuses without -auto-approve): `confirm` is asked,
    or the request gives it up front. A partial destroy names what it would leave broken."""
    action = str(request.action)
    if action not in CHANGING:
        return
    outside = dependents_outside(plan) if action == "destroy" else {}
    if outside:
        emit(DependentsOutside(action, outside))
    if request.non_interactive:
        if outside and not request.allow_broken_dependents:
            raise UsageError(
                f"{len(outside)} unit(s) outside the selection depend on what destroy removes",
                hint="destroy them too (widen --include), or pass --allow-broken-dependents",
            )
        return
    if confirm is None:
        raise UsageError(
            f"{action} changes infrastructure and there is no terminal to confirm it",
            hint="pass --non-interactive (or --yes), as in CI; TG_NON_INTERACTIVE=true works too",
        )
    if not confirm(plan, action):
        raise ConsentRefused(f"{action} not confirmed", hint="nothing was changed")


def _run(
    request: DeployRequest, plan: Plan, emit: DeployEventCallback, interrupt: Interrupt | None
) -> RunReport:
    settings = plan.repo.settings
    if request.tf_path:
        settings = replace(settings, engine=replace(settings.engine, terraform_binary=request.tf_path))
    base_env = None
    if plan.repo.features:  # terragrunt evaluates the config again itself: hand it the flags
        value = ",".join(f"{k}={v}" for k, v in plan.repo.features.items())
        base_env = {**os.environ, "TG_FEATURE": value, "TERRAGRUNT_FEATURE": value}
    options = RunOptions(
        parallelism=request.parallelism,
        resume=request.resume,
        rerun_changed=request.rerun_changed,
        fail_fast=request.fail_fast,
        allow_unknown_account=request.allow_unknown_account,
        source_override=Path(request.source).resolve() if request.source else None,
        out_dir=Path(request.out_dir) if request.out_dir else None,
        plan_dir=Path(request.plan_dir) if request.plan_dir else None,
    )
    engine = make_engine(request.engine, settings) if request.engine else None
    return run(
        plan,
        request.action,
        settings,
        engine=engine,
        options=options,
        on_event=emit,
        interrupt=interrupt,
        base_env=base_env,
    )
