"""run(): one action over a plan — the composition of the run layer.

For each unit, in readiness order (the scheduler): its account's credentials after the
wrong-account guard, the engine, retries of what the catalogue knows to be transient
(the unit runner), and a masked record of everything in the ledger, the unit's log and the
report (the run session). Policy that is not the runner's — which extra environment a unit
gets (data-store passwords) — comes from the caller.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from refarch import telemetry
from refarch.aws import AwsSessions, refuse_unknown_accounts
from refarch.config.discover import repo_root
from refarch.engines import Engine, default_engine_name, make_engine
from refarch.engines.workdir import unit_slug
from refarch.errors import DependencyNotApplied, NoCredentials, RefarchError, ToolNotFound, UsageError
from refarch.events import (
    AccountLockTrouble,
    RunEventCallback,
    RunFinished,
    RunNotice,
    RunStarted,
    UnitFinished,
)
from refarch.exec.masking import Masker
from refarch.exec.process import Interrupt
from refarch.exec.retry import rules_from_settings
from refarch.files import local_dir
from refarch.models import RUN_ACTIONS, Action, Plan, Repo, RunReport, Status, Unit
from refarch.planner import plan as make_plan
from refarch.policy import check, rules_for
from refarch.repo import load_repo
from refarch.runner import audit, saved_plans
from refarch.runner.account_locks import AccountLockLost, AccountLocks, accounts_of, ci_job_of, lock_key
from refarch.runner.checkov import checkov_findings
from refarch.runner.context import WORK_DIR, RunContext, RunOptions, Selection
from refarch.runner.ledger import (
    LedgerStore,
    LocalLedgerStore,
    find_ledger,
    new_run_id,
    past_durations,
    read_events,
)
from refarch.runner.ledger_dynamodb import DynamoLedgerStore, store_for
from refarch.runner.recovery import mark_pushed
from refarch.runner.repo_lock import repo_lock
from refarch.runner.report import build_report
from refarch.runner.resume import select, shown
from refarch.runner.resume import unfinished_run as unfinished_run  # noqa: PLC0414 - tests import it here
from refarch.runner.scheduler import Gate, Outcome, plan_waits, schedule
from refarch.runner.session import RunSession
from refarch.runner.state_locks import StaleLock, aws_digest_repair, aws_lock_reader, stale_locks
from refarch.runner.unit import ExtraEnv, UnitAccess, UnitCredentials, UnitRunner
from refarch.settings import Settings, load_settings

__all__ = ["AwsUnitCredentials", "Pushed", "RunOptions", "load_plan", "recover", "run"]


class AwsUnitCredentials:
    """UnitCredentials from AwsSessions: the unit's `iam_role` if set, else the account role
    (none when the caller already is in the account); then STS GetCallerIdentity must name
    the unit's `aws_account_id`."""

    def __init__(self, sessions: AwsSessions) -> None:
        self.sessions = sessions

    def for_unit(self, unit: Unit) -> UnitAccess:
        session = self.sessions.session(unit.account_id, unit.account, unit.region, role_arn=unit.iam_role)
        self.sessions.check_account(unit.path, unit.account_id, session)
        identity = self.sessions.caller_identity(session)
        env = self.sessions.credentials_env(
            unit.account_id, unit.region, unit.account, role_arn=unit.iam_role
        )
        return UnitAccess(env, {"Account": identity["Account"], "Arn": identity["Arn"]})


def run(
    plan: Plan,
    action: Action | str | None = None,
    settings: Settings | None = None,
    *,
    options: RunOptions = RunOptions(),  # noqa: B008 - frozen: a shared default cannot change
    engine: Engine | None = None,
    on_event: RunEventCallback | None = None,
    sessions: AwsSessions | None = None,
    credentials: UnitCredentials | None = None,
    extra_env: ExtraEnv | None = None,
    secrets: Iterable[str] = (),
    sleep: Callable[[float], None] | None = None,
    interrupt: Interrupt | None = None,
    base_env: Mapping[str, str] | None = None,
    rand: Callable[[], float] = random.random,
    ledger_store: LedgerStore | None = None,
) -> RunReport:
    """Run `action` (apply, plan, destroy, output) on every unit of `plan`.

    Units start as soon as what they wait for succeeded (`Plan.ready_after`), at most
    `options.parallelism` at once. Seams: `engine`, `credentials` (or `sessions`), `sleep`
    (between retries; default: a wait that an interrupt cuts short), `interrupt` (the CLI's
    Ctrl-C), `base_env` (default os.environ), `extra_env` (per-unit secrets, masked),
    `ledger_store` (default: what `[ledger]` says; with the shared DynamoDB ledger, apply and
    destroy hold a lock on each account of the run while it runs).
    """
    action = _run_action(action or plan.action, plan)
    settings = settings or plan.repo.settings
    base = dict(os.environ if base_env is None else base_env)
    engine = engine if engine is not None else _engine_for(settings, base)
    if credentials is None:  # refarch's own credentials: its account guard needs every account id
        sessions = _own_sessions(plan, action, settings, options, sessions)
        credentials = AwsUnitCredentials(sessions)
    terraform, base = _terraform_env(engine, settings, base)
    interrupt = interrupt or Interrupt()
    context = RunContext(
        plan=plan,
        action=action,
        settings=settings,
        options=options,
        engine=engine,
        credentials=credentials,
        base_env=base,
        interrupt=interrupt,
        sleep=sleep or _interruptible_sleep(interrupt),
        rand=rand,
        rules=rules_from_settings(settings),
        sessions=sessions,
        store=ledger_store or store_for(plan.repo, settings, sessions, base),
        extra_env=extra_env,
        terraform=terraform,
        policy_rules=rules_for(settings) if settings.policy.check_apply else None,
        lock_reader=aws_lock_reader(sessions) if sessions else None,
        digest_repair=aws_digest_repair(sessions) if sessions else None,
    )
    selection = select(context)
    saved = _saved_plans(context, selection)
    return _run_locked(context, selection, saved, _masker(context, selection, secrets), on_event)


def _engine_for(settings: Settings, env: Mapping[str, str]) -> Engine:
    """The engine `[engine] name` names, else terragrunt when it is on PATH, else terraform."""
    name = settings.engine.name or default_engine_name(env)
    return make_engine(str(name), settings)


def _terraform_env(
    engine: Engine, settings: Settings, base: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The engine's binary must exist; the Terraform the run uses, stated (`_terraform_of`),
    and the environment with it: the terragrunt engine runs that Terraform unless the caller
    chose one itself with TG_TF_PATH."""
    _check_tool(engine, base)
    terraform = _terraform_of(engine, settings, base)
    if engine.name == "terragrunt" and terraform.get("path") and not base.get("TG_TF_PATH"):
        base = {**base, "TG_TF_PATH": terraform["path"], "TERRAGRUNT_TFPATH": terraform["path"]}
    return terraform, base


def _own_sessions(
    plan: Plan, action: Action, settings: Settings, options: RunOptions, sessions: AwsSessions | None
) -> AwsSessions:
    """refarch's own AWS sessions, when the caller gives no credentials: the account guard
    needs every account id (apply/destroy), and nothing could run without base credentials,
    so both are refused up front."""
    if action in (Action.APPLY, Action.DESTROY) and not options.allow_unknown_account:
        refuse_unknown_accounts([plan.repo.units[path] for path in plan.units], action)
    sessions = sessions or AwsSessions(settings)
    if sessions.base().get_credentials() is None:  # nothing could run: say so up front
        raise NoCredentials()
    return sessions


def _saved_plans(context: RunContext, selection: Selection) -> saved_plans.SavedPlans | None:
    """plan --out-dir / apply --plan-dir: the saved plans of the run; apply checks, before
    anything runs, that each unit it starts has a fresh one."""
    repo, options = context.repo, context.options
    checks = plan_checks(context.settings, options.inspect_plan, root=repo.root, env=context.base_env)
    saved = saved_plans.for_run(
        context.action,
        options.out_dir,
        options.plan_dir,
        audit.refarch_version(),
        repo_root=repo.root,
        source_override=options.source_override,
        inspect=checks,
    )
    if saved is not None and context.action == Action.APPLY:  # before anything runs
        command = f"refarch plan-all {shown(repo.root)} --out-dir {shown(saved.folder)}"
        saved.check([repo.units[p] for p in selection.to_run], command)
    return saved


def _masker(context: RunContext, selection: Selection, secrets: Iterable[str]) -> Masker:
    """What is masked in every log, event and report: the caller's secrets and TF_VAR_
    values, and each selected unit's sensitive inputs and get_env() values."""
    masker = Masker(secrets)
    base = context.base_env
    masker.register([v for k, v in base.items() if k.startswith("TF_VAR_")])  # the caller's
    for path in selection.units:
        masker.register_inputs(context.repo.units[path].inputs)
        masker.register_env_values(context.repo.units[path].inputs, base)  # get_env() values
    return masker


def _run_locked(
    context: RunContext,
    selection: Selection,
    saved: saved_plans.SavedPlans | None,
    masker: Masker,
    on_event: RunEventCallback | None,
) -> RunReport:
    """The run under its locks: the repo lock, and with the shared ledger the account locks
    of apply and destroy; what a dead resumed run left is released only when it is known gone."""
    repo, action, store = context.repo, context.action, context.store
    run_id = new_run_id()
    # The run being resumed is known gone: by the repo lock on this machine; with the shared
    # ledger (another runner may have run it) only by the account locks apply/destroy hold.
    gone = not isinstance(store, DynamoLedgerStore) or action in (Action.APPLY, Action.DESTROY)
    who = audit.who_runs(context.sessions, context.base_env, run_id)
    with (
        telemetry.run_span(
            context.settings, context.base_env, action=str(action), run_id=run_id, engine=context.engine.name
        ),
        repo_lock(repo.root, f"refarch {action}", run_id) as lock,
        _account_locks(context, selection, run_id, who) as locks,
    ):
        released = [n for n in (lock.notice, *(locks.notices if locks else ())) if n]
        if (
            locks is not None
            and selection.resumed_from is not None
            and not locks.proven_dead(selection.resumed_from)
        ):
            # Its lock was taken for silence alone: a paused run may wake up, and the state
            # locks its Terraform holds are never forced.
            gone = False
            released.append(
                f"run {selection.resumed_from} may still be alive (its account lock expired, its process "
                "is not known gone): its state locks are left alone"
            )
        if saved is not None and action == Action.PLAN:
            saved.clear(selection.to_run)
        session = RunSession(
            repo.root, list(selection.units), masker=masker, on_event=on_event, run_id=run_id, store=store
        )
        lock_reader = context.lock_reader if gone else None
        stale = stale_locks(selection.unfinished, repo.units, lock_reader) if lock_reader is not None else []
        local_dir(repo.root, WORK_DIR.name)  # the units' working folders: ours alone
        runner = UnitRunner(
            context,
            session,
            saved_plans=saved,
            resuming=selection.resumed_from is not None,
            dead_units=frozenset(selection.unfinished if gone else ()),
            # before each unit is scheduled, and again right before its tool runs
            fence=_fence(locks, repo, session) if locks is not None else None,
        )
        notices = (*released, *selection.notices)
        return _run_session(
            context, replace(selection, notices=notices), runner, who=who, locks=locks, stale=stale
        )


def plan_checks(
    settings: Settings,
    more: saved_plans.PlanInspector | None = None,
    *,
    root: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> saved_plans.PlanInspector:
    """What each saved plan's summary records: its policy findings (`policy`; Checkov's too
    with `[policy] checkov`), then `more`."""
    rules = rules_for(settings)

    def inspect(unit: Unit, document: Mapping[str, Any]) -> Mapping[str, Any]:
        findings = check(document, rules)
        if settings.policy.checkov and root is not None:
            findings += checkov_findings(root, unit.path, document, settings.policy, env or {})
        found: dict[str, Any] = {"policy": [f.to_json() for f in findings]}
        if more is not None:
            found.update(more(unit, document))
        return found

    return inspect


@contextlib.contextmanager
def _account_locks(
    context: RunContext, selection: Selection, run_id: str, who: Mapping[str, str]
) -> Iterator[AccountLocks | None]:
    """With the shared ledger, apply and destroy hold a lock on each account of the run
    (account_locks.py); yields them (their `notices`: dead runs' locks released on the way)."""
    store = context.store
    if not isinstance(store, DynamoLedgerStore) or context.action not in (Action.APPLY, Action.DESTROY):
        yield None
        return
    locks = AccountLocks(
        store.dynamodb,
        store.place.table,
        run_id=run_id,
        expiry=store.place.lock_expiry,
        job_url=who.get("job_url"),
        ci_job=ci_job_of(context.base_env),
    )
    units = [context.repo.units[p] for p in selection.units]
    with locks.held(accounts_of([(u.account_id, u.account) for u in units])):
        yield locks


def _run_session(
    context: RunContext,
    selection: Selection,
    runner: UnitRunner,
    *,
    who: Mapping[str, str],
    locks: AccountLocks | None,
    stale: list[StaleLock],
) -> RunReport:
    """The run itself, inside the repo lock: schedule the units, record, report."""
    session, saved = runner.session, runner.saved_plans
    if context.action == Action.APPLY and saved is None:  # before anything starts: what it reads must exist
        _refuse_missing_outputs(context, runner, selection)
    started = time.time()
    outcomes: dict[str, Outcome] = {}
    try:
        _start(context, selection, session, who)
        for lock in stale:  # left by the run being resumed, which is gone (we hold the repo lock)
            _release(runner, lock, selection.resumed_from)
        outcomes = _schedule(context, selection, runner)
    finally:
        if locks is not None:
            locks.on_trouble = None
        report = _finish(context, selection, session, started, outcomes)
    if saved is not None and context.action == Action.PLAN:
        _write_plan_summary(context.repo, saved, report, session)
    session.emit(RunFinished(report))
    return report


def _refuse_missing_outputs(context: RunContext, runner: UnitRunner, selection: Selection) -> None:
    """apply: refused before anything starts when a dependency outside the run has no
    outputs its units need (recorded in the ledger; the session is closed)."""
    needs = _outputs_missing(runner, context.plan, selection.to_run)
    if not needs:
        return
    runner.session.ledger.write("run_refused", needs=needs)
    runner.session.close()
    includes = " ".join(f"--include {dep}" for dep in needs)
    root = shown(context.repo.root)
    raise DependencyNotApplied(
        needs,
        f"refarch apply {root} {includes} (first), or this command with --with-dependencies",
    )


def _start(context: RunContext, selection: Selection, session: RunSession, who: Mapping[str, str]) -> None:
    """The run's start in the ledger (what, where, who, with which identities) and to the
    caller, then the notices gathered on the way."""
    repo, base, units = context.repo, context.base_env, list(selection.units)
    identities = audit.identities(context.credentials, [repo.units[p] for p in units], session.masker)
    session.ledger.write(
        "run_start",
        run_id=session.run_id,
        action=context.action,
        engine=context.engine.name,
        terraform=dict(context.terraform),
        repo=str(repo.root),
        git_commit=who.get("commit") or audit.git_commit(repo.root, base),
        git_branch=who.get("branch") or audit.git_branch(repo.root, base),
        who={k: v for k, v in who.items() if k not in ("commit", "branch")},
        ledger_backend=session.store.name,
        refarch_version=audit.refarch_version(),
        pid=os.getpid(),
        host=socket.gethostname(),
        parallelism=context.options.parallelism,
        fail_fast=context.options.fail_fast,
        resumed_from=selection.resumed_from,
        units=units,
        digests={p: repo.units[p].digest for p in units},
        **({"saved_plans": selection.plans_id} if selection.plans_id else {}),
        identities=identities,
    )
    session.emit(
        RunStarted(
            session.run_id,
            context.action,
            context.engine.name,
            tuple(units),
            tuple(sorted(selection.done)),
            session.ledger.location,
            identities,
            dict(context.terraform),
        )
    )
    for notice in selection.notices:
        session.ledger.write("notice", text=notice)
        session.emit(RunNotice(notice))


def _schedule(context: RunContext, selection: Selection, runner: UnitRunner) -> dict[str, Outcome]:
    """The units done in the resumed run are recorded as such; the others are scheduled."""
    on_finish = _recorder(context, runner.session)
    for path in selection.units:
        if path in selection.done:
            on_finish(path, Outcome(Status.DONE_BEFORE, f"succeeded in run {selection.resumed_from}"))
    options, action = context.options, context.action
    return schedule(
        selection.to_run,
        plan_waits(context.plan, list(selection.units), tiers=action != Action.PLAN),  # plans change nothing
        runner,
        parallelism=options.parallelism,
        fail_fast=options.fail_fast,
        interrupt=context.interrupt,
        on_finish=on_finish,
        durations=past_durations(context.repo.root, action, store=runner.session.store)
        if options.history
        else None,
        gate=runner.fence,
        after_failure=action == Action.PLAN,
    )


def _recorder(context: RunContext, session: RunSession) -> Callable[[str, Outcome], None]:
    """What happens as each unit finishes: its log attached, its end in the ledger (with
    what the audit needs) and to the caller."""
    repo, action = context.repo, context.action

    def on_finish(path: str, outcome: Outcome) -> None:
        record = session.records[path]
        log_uri = session.ledger.attach_log(path, Path(record.log_path)) if record.log_path else None
        audit = {
            "action": str(action),
            "account": repo.units[path].account,
            "digest": repo.units[path].digest,
        }
        fields = {
            "status": outcome.status,
            "message": outcome.message,
            "attempts": record.attempts,
            "duration": record.duration,
            "log": record.log_path,
            "blocked_by": outcome.blocked_by,
        }
        session.ledger.write(
            "unit_finish",
            unit=path,
            **{**fields, "duration": round(record.duration, 3)},
            **audit,
            **({"log_uri": log_uri} if log_uri else {}),
            **({"changes": record.changes} if record.changes is not None else {}),
        )
        session.emit(UnitFinished(path, **fields))  # type: ignore[arg-type]

    return on_finish


def _finish(
    context: RunContext,
    selection: Selection,
    session: RunSession,
    started: float,
    outcomes: dict[str, Outcome],
) -> RunReport:
    """The run's end, on every path: an interruption recorded, the report built, its
    counts in the ledger, the session closed."""
    repo, action, interrupted = context.repo, context.action, context.interrupt.requested.is_set()
    if interrupted:
        session.ledger.write("run_interrupted")
    units = list(selection.units)
    report = build_report(
        run_id=session.run_id,
        action=action,
        engine=context.engine.name,
        started=started,
        finished=time.time(),
        accounts={p: repo.units[p].account for p in units},
        selected=units,
        outcomes=outcomes,
        records=session.records,
        done_before=selection.done,
        resumed_from=selection.resumed_from,
        interrupted=context.interrupt.requested.is_set(),
        ledger_path=session.ledger.location,
        outputs={
            p: session.masker.mask_outputs(r.outputs)
            for p, r in session.records.items()
            if r.outputs is not None and action == Action.OUTPUT
        },
        output_reads=session.outputs.reads,
        terraform=context.terraform,
    )
    session.ledger.write(
        "run_finish",
        counts=dict(report.counts),
        exit_code=report.exit_code,
        duration=round(report.duration, 3),
    )
    session.close()
    return report


def _write_plan_summary(
    repo: Repo, saved: saved_plans.SavedPlans, report: RunReport, session: RunSession
) -> None:
    """plan --out-dir: the summary of the saved plans; the run is over, so a failure to
    write it is said, never a lost report."""
    command = f"refarch apply {shown(repo.root)} --plan-dir {shown(saved.folder)}"
    try:
        saved.write_summary(report, apply_command=command)
    except (OSError, RefarchError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        session.emit(RunNotice(f"could not write the plan summary in {saved.folder}: {detail}"))


def _fence(locks: AccountLocks, repo: Repo, session: RunSession) -> Gate:
    """Before each unit: this run must still hold its account's lock (a conditional write);
    a failed heartbeat is recorded and shown as it happens."""

    def trouble(account: str, reason: str, lost: bool) -> None:
        session.ledger.write("heartbeat_failed", account=account, reason=reason, lost=lost)
        session.emit(AccountLockTrouble(account, reason, lost))

    locks.on_trouble = trouble

    said: set[str] = set()
    guard = threading.Lock()

    def gate(path: str) -> str | None:
        unit = repo.units[path]
        try:
            locks.confirm(lock_key(unit.account_id, unit.account))
        except AccountLockLost as exc:
            with guard:
                first = exc.account not in said
                said.add(exc.account)
            if first:  # once per account: every later unit is refused for the same reason
                session.ledger.write("account_lock_lost", account=exc.account, reason=exc.reason, unit=path)
                session.emit(AccountLockTrouble(exc.account, exc.reason, True, path))
            return f"this run lost the lock on account {exc.account} ({exc.reason})"
        return None

    return gate


def _outputs_missing(runner: UnitRunner, plan: Plan, units: list[str]) -> dict[str, list[str]]:
    """The dependencies outside the run whose outputs the run's units need (no mocks allowed
    for apply) and that have none: {dependency: the units that need it}. Each is read once;
    the run's units get the values read here."""
    running = set(units)
    needs: dict[str, list[str]] = {}
    for path in units:
        for dep in plan.repo.units[path].dependency_blocks:
            if not dep.enabled or dep.skip_outputs or dep.path in running or dep.path not in plan.repo.units:
                continue
            allowed = dep.mock_outputs_allowed_terraform_commands
            if dep.mock_outputs is not None and (allowed is None or Action.APPLY in allowed):
                continue
            target = plan.repo.units[dep.path]
            log = runner.session.log_path(unit_slug(dep.path))

            def read(target: Unit = target, log: Path = log) -> Mapping[str, Any]:
                return runner.engine.read_outputs(runner.job(target, "output", log, lambda _s, _l: None))

            try:
                found = runner.session.outputs.get(dep.path, read)
            except RefarchError:  # no backend, no state yet: nothing to read
                found = {}
            if not found:
                needs.setdefault(dep.path, []).append(path)
    return needs


@dataclass(frozen=True)
class Pushed:
    """One moved-aside state file and how pushing it back went."""

    unit: str
    file: Path
    ok: bool
    message: str


def recover(
    plan: Plan,
    run_ref: str = "last",
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    sessions: AwsSessions | None = None,
    credentials: UnitCredentials | None = None,
    base_env: Mapping[str, str] | None = None,
    on_event: RunEventCallback | None = None,
) -> list[Pushed]:
    """Push the state files that run `run_ref` moved aside back to their units' backends
    (`terraform state push`), oldest first; a pushed file is renamed `*.pushed`, never deleted.
    Only the units of `plan` are considered."""
    repo = plan.repo
    settings = settings or repo.settings
    base = dict(os.environ if base_env is None else base_env)
    wanted = _rescued_files(plan, run_ref)
    if not wanted:
        return []
    context = RunContext(
        plan=plan,
        action=Action.APPLY,
        settings=settings,
        options=RunOptions(),
        engine=engine if engine is not None else _engine_for(settings, base),
        credentials=credentials
        if credentials is not None
        else AwsUnitCredentials(sessions or AwsSessions(settings)),
        base_env=base,
        interrupt=Interrupt(),
        sleep=lambda _s: None,
        rand=random.random,
        rules=(),
        store=LocalLedgerStore(repo.root),
    )
    units = sorted({unit for unit, _ in wanted})
    with repo_lock(repo.root, "refarch recover") as _lock:
        session = RunSession(repo.root, units, masker=Masker(), on_event=on_event, store=context.store)
        runner = UnitRunner(context, session)
        session.ledger.write(
            "run_start", run_id=session.run_id, action="recover", recovers=run_ref, units=units
        )
        results = [_push_back(runner, unit, file, session) for unit, file in wanted]
        session.close()
    return results


def _rescued_files(plan: Plan, run_ref: str) -> list[tuple[str, Path]]:
    """The state files run `run_ref` moved aside and that are still there, for the units of
    `plan`, oldest first."""
    events = read_events(find_ledger(plan.repo.root, run_ref))
    wanted = [
        (e["unit"], Path(f)) for e in events if e.get("event") == "state_rescued" for f in e.get("files", ())
    ]
    return [(unit, file) for unit, file in wanted if unit in plan.units and file.is_file()]


def _push_back(runner: UnitRunner, unit: str, file: Path, session: RunSession) -> Pushed:
    """`terraform state push` one moved-aside file; renamed `*.pushed` when it worked, and
    recorded in the ledger either way."""
    log = session.log_path(unit_slug(unit))
    with session.unit_log(unit, log) as on_line:
        try:
            job = runner.job(runner.repo.units[unit], "apply", log, on_line)
            result = runner.engine.terraform_command(job, ["state", "push", str(file)])
            ok, message = result.ok, result.output_tail[-2000:]
        except RefarchError as exc:
            ok, message = False, str(exc)
    kept = mark_pushed(file) if ok else file
    session.ledger.write("state_pushed" if ok else "state_push_failed", unit=unit, file=str(kept))
    return Pushed(unit, kept, ok, session.masker.mask(message))


def _release(runner: UnitRunner, lock: StaleLock, dead_run: str | None) -> None:
    """`force-unlock` one lock the dead run took, and say so in the ledger and to the user."""
    session, unit = runner.session, runner.repo.units[lock.unit]
    log = session.log_path(unit_slug(lock.unit))
    with session.unit_log(lock.unit, log) as on_line:
        job = runner.job(unit, "apply", log, on_line)
        result = runner.engine.terraform_command(job, ["force-unlock", "-force", lock.lock_id])
    session.ledger.write(
        "lock_released" if result.ok else "lock_release_failed",
        unit=lock.unit,
        lock=dict(lock.info),
        cause="dead_run",
    )
    verdict = "released" if result.ok else "could not release"
    session.emit(
        RunNotice(
            f"{verdict} the state lock {lock.lock_id} of {lock.unit} that run {dead_run} left when it died",
            lock.unit,
        )
    )


def _terraform_of(engine: Engine, settings: Settings, env: Mapping[str, str]) -> dict[str, str]:
    """The Terraform the run's units use, stated: path, version and why that one (a unit's own
    `terraform_binary` aside). The terragrunt engine is handed the same one (TG_TF_PATH)
    unless the caller set TG_TF_PATH itself. Empty for engines that are neither."""
    from refarch.engines.terraform import resolve_terraform  # noqa: PLC0415 - only for runs

    describe = getattr(engine, "describe", None)
    if callable(describe):
        return dict(describe(env).to_json())
    if engine.name != "terragrunt":
        return {}
    resolved = resolve_terraform(settings, env)
    if resolved.source == "not found":
        return {}
    return resolved.with_version(env).to_json()


def _check_tool(engine: Engine, env: Mapping[str, str]) -> None:
    """The engine's own binary must exist before any unit starts (a hook's is the unit's)."""
    binary = getattr(engine, "binary", None)
    if not isinstance(binary, str):
        return
    if os.sep in binary:
        found = Path(binary).is_file() and os.access(binary, os.X_OK)
    else:
        found = shutil.which(binary, path=env.get("PATH")) is not None
    if not found:
        raise ToolNotFound(binary, hint=f"install {binary}, or set its path in refarch.toml's [engine]")


def _interruptible_sleep(interrupt: Interrupt) -> Callable[[float], None]:
    """A wait between retries that an interrupt cuts short."""

    def sleep(delay: float) -> None:
        interrupt.requested.wait(delay)

    return sleep


def _run_action(action: Action | str, plan: Plan) -> Action:
    """The action as an Action, refused when run() cannot do it or the plan was not made for it."""
    if action not in RUN_ACTIONS:
        raise UsageError(f"unknown action {action!r}", hint=f"use one of {', '.join(RUN_ACTIONS)}")
    action = Action(action)
    if (action == Action.DESTROY) != (plan.action == Action.DESTROY):
        raise UsageError(
            f"the plan was built for {plan.action!r}, not {action.value!r}",
            hint=f'build it with plan(repo, action="{action.value}")',
        )
    return action


def load_plan(
    directory: str | Path,
    action: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    ignore_dependencies: bool = False,
    endpoint_url: str | None = None,
    profile: str | None = None,
    cache: bool = True,
    env: Mapping[str, str] | None = None,
    queue_include_external: bool = False,
    repo_options: Mapping[str, Any] | None = None,
    allow_unknown_account: bool = False,
    with_dependencies: bool = False,
) -> Plan:
    """Load the live repo at `directory` (with `--endpoint-url` over refarch.toml) and plan
    `action` on it: what `refarch apply DIR` runs, for a caller to inspect or confirm first.
    The units of `directory` (narrowed by `include`) run; their dependencies outside it are
    read, not run, unless `with_dependencies`.
    apply and destroy refuse units of an unknown account unless `allow_unknown_account`
    (run() checks it again for callers that build their own plan)."""
    env = dict(os.environ) if env is None else dict(env)
    root = Path(directory).resolve()
    settings = load_settings(repo_root(root), env).with_overrides(endpoint_url=endpoint_url, profile=profile)
    repo = load_repo(root, env=env, settings=settings, cache=cache, **(repo_options or {}))
    plan = make_plan(
        repo,
        action,
        include=include,
        exclude=exclude,
        ignore_dependencies=ignore_dependencies,
        queue_include_external=queue_include_external,
        with_dependencies=with_dependencies,
    )
    if action in (Action.APPLY, Action.DESTROY) and not allow_unknown_account:
        refuse_unknown_accounts([repo.units[path] for path in plan.units], action)
    return plan
