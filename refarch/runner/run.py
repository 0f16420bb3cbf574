"""run(): one action over a plan — the composition of the run layer.

For each unit, in readiness order (the scheduler): its account's credentials after the
wrong-account guard, the engine, retries of what the catalogue knows to be transient
(the unit runner), and a masked record of everything in the ledger, the unit's log and the
report (the run session). Policy that is not the runner's — which extra environment a unit
gets (data-store passwords) — comes from the caller.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import random
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from refarch import telemetry
from refarch.aws import AWS_EXCEPTIONS, AwsSessions, refuse_unknown_accounts
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
from refarch.exec.process import Interrupt, capture
from refarch.exec.retry import lock_timeout_from_settings, rules_from_settings
from refarch.files import local_dir
from refarch.models import RUN_ACTIONS, Action, Plan, Repo, RunReport, Status, Unit
from refarch.planner import plan as make_plan
from refarch.policy import check, rules_for
from refarch.repo import load_repo
from refarch.runner import saved_plans
from refarch.runner.account_locks import AccountLockLost, AccountLocks, accounts_of, ci_job_of, lock_key
from refarch.runner.checkov import checkov_findings
from refarch.runner.ledger import (
    LedgerStore,
    ResumeSelection,
    ci_context,
    find_ledger,
    last_of_action,
    load_run,
    new_run_id,
    past_durations,
    read_events,
    resume_selection,
    resume_verb,
)
from refarch.runner.ledger_dynamodb import DynamoLedgerStore, store_for
from refarch.runner.recovery import mark_pushed
from refarch.runner.repo_lock import repo_lock
from refarch.runner.report import build_report
from refarch.runner.scheduler import Gate, Outcome, plan_waits, schedule
from refarch.runner.session import RunSession
from refarch.runner.state_locks import LockReader, StaleLock, stale_locks
from refarch.runner.unit import ExtraEnv, UnitAccess, UnitCredentials, UnitRunner
from refarch.settings import Settings, load_settings

WORK_DIR = Path(".refarch") / "work"

__all__ = ["AwsUnitCredentials", "Pushed", "RunOptions", "load_plan", "recover", "run"]


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
    options: RunOptions = RunOptions(),
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
    repo = plan.repo
    settings = settings or repo.settings
    base = dict(os.environ if base_env is None else base_env)
    if engine is None:
        name = settings.engine.name or default_engine_name(base)
        engine = make_engine(str(name), settings)
    if credentials is None:  # refarch's own credentials: its account guard needs every account id
        if action in (Action.APPLY, Action.DESTROY) and not options.allow_unknown_account:
            refuse_unknown_accounts([repo.units[path] for path in plan.units], action)
        sessions = sessions or AwsSessions(settings)
        if sessions.base().get_credentials() is None:  # nothing could run: say so up front
            raise NoCredentials()
        credentials = AwsUnitCredentials(sessions)
    _check_tool(engine, base)
    terraform = _terraform_of(engine, settings, base)
    if engine.name == "terragrunt" and terraform.get("path") and not base.get("TG_TF_PATH"):
        base = {**base, "TG_TF_PATH": terraform["path"], "TERRAGRUNT_TFPATH": terraform["path"]}
    interrupt = interrupt or Interrupt()
    store = ledger_store or store_for(repo, settings, sessions, base)

    selected = list(plan.units)
    done: frozenset[str] = frozenset()
    resumed_from = None
    unfinished: Mapping[str, Mapping[str, Any]] = {}
    resume_notices: list[str] = []
    if options.rerun_changed and options.resume is None:
        raise UsageError("--rerun-changed only applies to a resumed run", hint="add --resume last")
    ref = options.resume
    # apply --plan-dir: which saved plans the run applies (a retry must not apply them twice)
    plans_id = saved_plans.identity(options.plan_dir, list(plan.units)) if options.plan_dir else None
    if ref == "auto":  # CI: this job's unfinished run at this commit, else a fresh start
        commit = ci_context(base).get("commit") or _git_commit(repo.root, base)
        ref = unfinished_run(store, action, list(plan.units), commit, plans_id)
    if ref is not None:
        if ref == "last" and isinstance(store, DynamoLedgerStore):  # this job's last run, not another's
            ref = store.last_of(action, list(plan.units))
        elif ref == "last":  # the last run of this action, not a plan-all before an apply
            ref = last_of_action(store, action)
        past = load_run(repo.root, ref, store=store)
        resumed = resume_selection(past, plan, rerun_changed=options.rerun_changed)
        done = resumed.done
        selected = [u for u in plan.units if u in set(past.units)]
        resumed_from, unfinished = past.run_id, past.unfinished
        resume_notices = _resume_notices(resumed, action, repo.root, past.run_id)
    checks = plan_checks(settings, options.inspect_plan, root=repo.root, env=base)
    saved = saved_plans.for_run(
        action,
        options.out_dir,
        options.plan_dir,
        _version(),
        repo_root=repo.root,
        source_override=options.source_override,
        inspect=checks,
    )
    if saved is not None and action == Action.APPLY:  # before anything runs
        command = f"refarch plan-all {_shown(repo.root)} --out-dir {_shown(saved.folder)}"
        saved.check([repo.units[p] for p in selected if p not in done], command)

    masker = Masker(secrets)
    masker.register([v for k, v in base.items() if k.startswith("TF_VAR_")])  # the caller's
    for path in selected:
        masker.register_inputs(repo.units[path].inputs)
        masker.register_env_values(repo.units[path].inputs, base)  # get_env() values
    run_id = new_run_id()
    # The run being resumed is known gone: by the repo lock on this machine; with the shared
    # ledger (another runner may have run it) only by the account locks apply/destroy hold.
    gone = not isinstance(store, DynamoLedgerStore) or action in (Action.APPLY, Action.DESTROY)
    who = _who(sessions, base)
    if sessions is not None:  # CloudTrail shows the run and its caller on every assumed role
        caller = who.get("actor") or who.get("caller", "").rsplit("/", 1)[-1] or who["user"]
        who["session_name"] = sessions.name_sessions(run_id, caller)
    with (
        telemetry.run_span(settings, base, action=str(action), run_id=run_id, engine=engine.name),
        repo_lock(repo.root, f"refarch {action}", run_id) as lock,
        _account_locks(
            store, action, [repo.units[p] for p in selected], run_id, who, ci_job_of(base)
        ) as locks,
    ):
        released = [n for n in (lock.notice, *(locks.notices if locks else ())) if n]
        if locks is not None and resumed_from is not None and not locks.proven_dead(resumed_from):
            # Its lock was taken for silence alone: a paused run may wake up, and the state
            # locks its Terraform holds are never forced.
            gone = False
            released.append(
                f"run {resumed_from} may still be alive (its account lock expired, its process "
                "is not known gone): its state locks are left alone"
            )
        if saved is not None and action == Action.PLAN:
            saved.clear(p for p in selected if p not in done)
        session = RunSession(
            repo.root, selected, masker=masker, on_event=on_event, run_id=run_id, store=store
        )
        return _run_session(
            plan,
            action,
            settings,
            session,
            options=options,
            engine=engine,
            credentials=credentials,
            selected=selected,
            done=done,
            resumed_from=resumed_from,
            interrupt=interrupt,
            base_env=base,
            extra_env=extra_env,
            sleep=sleep,
            rand=rand,
            notices=[*released, *resume_notices],
            stale=stale_locks(unfinished, repo.units, _lock_reader(sessions)) if sessions and gone else [],
            who=who,
            lock_reader=_lock_reader(sessions) if sessions else None,
            saved=saved,
            plans_id=plans_id,
            dead_units=unfinished if gone else (),
            digest_repair=_digest_repair(sessions) if sessions else None,
            locks=locks,
            terraform=terraform,
        )


def _resume_notices(resumed: ResumeSelection, action: Action, root: Path, run_id: str) -> list[str]:
    """Say which units succeeded in the resumed run and changed since: re-run, or kept."""
    if not resumed.changed:
        return []
    listing = ", ".join(resumed.changed)
    if resumed.rerun:
        return [f"changed since they succeeded, run again (--rerun-changed): {listing}"]
    return [
        f"changed since they succeeded, not run again: {listing} (to run them too: "
        f"refarch {resume_verb(action)} {_shown(root)} --resume {run_id} --rerun-changed)"
    ]


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


def unfinished_run(
    store: LedgerStore, action: str, units: list[str], commit: str | None, plans: str | None = None
) -> str | None:
    """`--resume auto`: the newest run of `action` on exactly `units` (this CI job's, never
    another job's) when it ran at `commit` and did not finish cleanly, or when it applied the
    same saved plans (`plans`: a retry of a job that succeeded applies nothing twice); else
    None."""
    if isinstance(store, DynamoLedgerStore):
        try:
            candidate: str | None = store.last_of(action, units)
        except UsageError:
            return None
    else:
        wanted = sorted(units)
        candidate = None
        for run_id in reversed(store.run_ids()):
            events = store.events(run_id)
            start = events[0] if events and events[0].get("event") == "run_start" else {}
            if start.get("action") == action and sorted(start.get("units", [])) == wanted:
                candidate = run_id
                break
    if candidate is None:
        return None
    events = store.events(candidate)
    start = next((e for e in events if e.get("event") == "run_start"), {})
    if commit and start.get("git_commit") and start.get("git_commit") != commit:
        return None  # another commit's run: its plans and digests are not this job's
    finish = next((e for e in events if e.get("event") == "run_finish"), None)
    if plans is not None and start.get("saved_plans") not in (None, plans):
        return None  # a new plan job's plans: apply them
    if (
        finish is not None
        and finish.get("exit_code") == 0
        and (plans is None or start.get("saved_plans") != plans)
    ):
        return None
    return candidate


@contextlib.contextmanager
def _account_locks(
    store: LedgerStore,
    action: Action,
    units: list[Unit],
    run_id: str,
    who: Mapping[str, str],
    ci_job: Mapping[str, str] | None = None,
) -> Iterator[AccountLocks | None]:
    """With the shared ledger, apply and destroy hold a lock on each account of the run
    (account_locks.py); yields them (their `notices`: dead runs' locks released on the way)."""
    if not isinstance(store, DynamoLedgerStore) or action not in (Action.APPLY, Action.DESTROY):
        yield None
        return
    locks = AccountLocks(
        store.dynamodb,
        store.place.table,
        run_id=run_id,
        expiry=store.place.lock_expiry,
        job_url=who.get("job_url"),
        ci_job=ci_job,
    )
    with locks.held(accounts_of([(u.account_id, u.account) for u in units])):
        yield locks


def _run_session(
    plan: Plan,
    action: Action,
    settings: Settings,
    session: RunSession,
    *,
    options: RunOptions,
    engine: Engine,
    credentials: UnitCredentials,
    selected: list[str],
    done: frozenset[str],
    resumed_from: str | None,
    interrupt: Interrupt,
    base_env: dict[str, str],
    extra_env: ExtraEnv | None,
    sleep: Callable[[float], None] | None,
    rand: Callable[[], float],
    notices: list[str],
    stale: list[StaleLock],
    who: Mapping[str, str],
    lock_reader: LockReader | None = None,
    saved: saved_plans.SavedPlans | None = None,
    plans_id: str | None = None,
    dead_units: Iterable[str] = (),
    digest_repair: Callable[[Unit], str | None] | None = None,
    locks: AccountLocks | None = None,
    terraform: Mapping[str, str] | None = None,
) -> RunReport:
    """The run itself, inside the repo lock: schedule the units, record, report."""
    repo, masker, base = plan.repo, session.masker, base_env
    work_root = local_dir(repo.root, WORK_DIR.name)
    runner = UnitRunner(
        repo=repo,
        action=action,
        engine=engine,
        session=session,
        credentials=credentials,
        rules=rules_from_settings(settings),
        interrupt=interrupt,
        base_env=base,
        work_root=work_root,
        sleep=sleep or _interruptible_sleep(interrupt),
        rand=rand,
        lock_timeout=lock_timeout_from_settings(settings),
        extra_env=extra_env,
        source_override=options.source_override,
        endpoint_url=settings.endpoint_url,
        resuming=resumed_from is not None,
        lock_reader=lock_reader,
        dead_units=frozenset(dead_units),
        digest_repair=digest_repair,
        saved_plans=saved,
        # before each unit is scheduled, and again right before its tool runs
        fence=_fence(locks, repo, session) if locks is not None else None,
        policy_rules=rules_for(settings) if settings.policy.check_apply else None,
        policy_waivers=settings.policy.waivers,
    )

    if action == Action.APPLY and saved is None:  # before anything starts: what it reads must exist
        needs = _outputs_missing(runner, plan, [p for p in selected if p not in done])
        if needs:
            session.ledger.write("run_refused", needs=needs)
            session.close()
            shown = _shown(repo.root)
            includes = " ".join(f"--include {dep}" for dep in needs)
            raise DependencyNotApplied(
                needs,
                f"refarch apply {shown} {includes} (first), or this command with --with-dependencies",
            )

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

    started = time.time()
    outcomes: dict[str, Outcome] = {}
    try:
        identities = _identities(credentials, [repo.units[p] for p in selected], masker)
        session.ledger.write(
            "run_start",
            run_id=session.run_id,
            action=action,
            engine=engine.name,
            terraform=dict(terraform or {}),
            repo=str(repo.root),
            git_commit=who.get("commit") or _git_commit(repo.root, base),
            git_branch=who.get("branch") or _git_branch(repo.root, base),
            who={k: v for k, v in who.items() if k not in ("commit", "branch")},
            ledger_backend=session.store.name,
            refarch_version=_version(),
            pid=os.getpid(),
            host=socket.gethostname(),
            parallelism=options.parallelism,
            fail_fast=options.fail_fast,
            resumed_from=resumed_from,
            units=selected,
            digests={p: repo.units[p].digest for p in selected},
            **({"saved_plans": plans_id} if plans_id else {}),
            identities=identities,
        )
        session.emit(
            RunStarted(
                session.run_id,
                action,
                engine.name,
                tuple(selected),
                tuple(sorted(done)),
                session.ledger.location,
                identities,
                dict(terraform or {}),
            )
        )
        for notice in notices:
            session.ledger.write("notice", text=notice)
            session.emit(RunNotice(notice))
        for lock in stale:  # left by the run being resumed, which is gone (we hold the repo lock)
            _release(runner, lock, resumed_from)
        for path in selected:
            if path in done:
                on_finish(path, Outcome(Status.DONE_BEFORE, f"succeeded in run {resumed_from}"))
        outcomes = schedule(
            [p for p in selected if p not in done],
            plan_waits(plan, selected, tiers=action != Action.PLAN),  # plans change nothing
            runner,
            parallelism=options.parallelism,
            fail_fast=options.fail_fast,
            interrupt=interrupt,
            on_finish=on_finish,
            durations=past_durations(repo.root, action, store=session.store) if options.history else None,
            gate=runner.fence,
            after_failure=action == Action.PLAN,
        )
    finally:
        if locks is not None:
            locks.on_trouble = None
        if interrupt.requested.is_set():
            session.ledger.write("run_interrupted")
        report = build_report(
            run_id=session.run_id,
            action=action,
            engine=engine.name,
            started=started,
            finished=time.time(),
            accounts={p: repo.units[p].account for p in selected},
            selected=selected,
            outcomes=outcomes,
            records=session.records,
            done_before=done,
            resumed_from=resumed_from,
            interrupted=interrupt.requested.is_set(),
            ledger_path=session.ledger.location,
            outputs={
                p: masker.mask_outputs(r.outputs)
                for p, r in session.records.items()
                if r.outputs is not None and action == Action.OUTPUT
            },
            output_reads=session.outputs.reads,
            terraform=terraform,
        )
        session.ledger.write(
            "run_finish",
            counts=dict(report.counts),
            exit_code=report.exit_code,
            duration=round(report.duration, 3),
        )
        session.close()
    if saved is not None and action == Action.PLAN:
        command = f"refarch apply {_shown(repo.root)} --plan-dir {_shown(saved.folder)}"
        try:
            saved.write_summary(report, apply_command=command)
        except (OSError, RefarchError) as exc:  # the run is over: said, never a lost report
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            session.emit(RunNotice(f"could not write the plan summary in {saved.folder}: {detail}"))
    session.emit(RunFinished(report))
    return report


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
    events = read_events(find_ledger(repo.root, run_ref))
    wanted = [
        (e["unit"], Path(f)) for e in events if e.get("event") == "state_rescued" for f in e.get("files", ())
    ]
    wanted = [(unit, file) for unit, file in wanted if unit in plan.units and file.is_file()]
    if not wanted:
        return []
    if engine is None:
        name = settings.engine.name or default_engine_name(base)
        engine = make_engine(str(name), settings)
    if credentials is None:
        credentials = AwsUnitCredentials(sessions or AwsSessions(settings))
    units = sorted({unit for unit, _ in wanted})
    results: list[Pushed] = []
    with repo_lock(repo.root, "refarch recover") as _lock:
        session = RunSession(repo.root, units, masker=Masker(), on_event=on_event)
        runner = UnitRunner(
            repo=repo,
            action=Action.APPLY,
            engine=engine,
            session=session,
            credentials=credentials,
            rules=(),
            interrupt=Interrupt(),
            base_env=base,
            work_root=repo.root / WORK_DIR,
            sleep=lambda _s: None,
            rand=random.random,
            lock_timeout=lock_timeout_from_settings(settings),
            endpoint_url=settings.endpoint_url,
        )
        session.ledger.write(
            "run_start", run_id=session.run_id, action="recover", recovers=run_ref, units=units
        )
        for unit, file in wanted:
            log = session.log_path(unit_slug(unit))
            with session.unit_log(unit, log) as on_line:
                try:
                    job = runner.job(repo.units[unit], "apply", log, on_line)
                    result = engine.terraform_command(job, ["state", "push", str(file)])
                    ok, message = result.ok, result.output_tail[-2000:]
                except RefarchError as exc:
                    ok, message = False, str(exc)
            kept = mark_pushed(file) if ok else file
            session.ledger.write("state_pushed" if ok else "state_push_failed", unit=unit, file=str(kept))
            results.append(Pushed(unit, kept, ok, session.masker.mask(message)))
        session.close()
    return results


def _digest_repair(sessions: AwsSessions) -> Callable[[Unit], str | None]:
    """Sets a unit's state digest (`<bucket>/<key>-md5` in its lock table) to the MD5 of its
    state object in S3; returns the digest, or None when the unit has no such backend."""

    def repair(unit: Unit) -> str | None:
        config = unit.remote_state.config if unit.remote_state and unit.remote_state.backend == "s3" else {}
        bucket, key, table = config.get("bucket"), config.get("key"), config.get("dynamodb_table")
        if not (isinstance(bucket, str) and isinstance(key, str) and isinstance(table, str)):
            return None
        region = str(config.get("region") or unit.region or "") or None
        s3 = sessions.client("s3", unit.account_id, region, unit.account)
        dynamodb = sessions.client("dynamodb", unit.account_id, region, unit.account)
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
            dynamodb.put_item(
                TableName=table, Item={"LockID": {"S": f"{bucket}/{key}-md5"}, "Digest": {"S": digest}}
            )
        except AWS_EXCEPTIONS:
            return None
        return digest

    return repair


def _lock_reader(sessions: AwsSessions) -> LockReader:
    """Reads a state lock's DynamoDB item in the unit's account."""

    def read(unit: Unit, lock: Mapping[str, Any]) -> Mapping[str, Any] | None:
        region = str(lock.get("region") or "") or None
        client = sessions.client("dynamodb", unit.account_id, region, unit.account)
        try:
            item = client.get_item(TableName=lock["table"], Key={"LockID": {"S": lock["id"]}}).get("Item")
        except AWS_EXCEPTIONS:
            return None  # no table, no access: nothing refarch may release
        return {k: v.get("S") for k, v in item.items()} if item else None

    return read


def _release(runner: UnitRunner, lock: StaleLock, dead_run: str | None) -> None:
    """`force-unlock` one lock the dead run took, and say so in the ledger and to the user."""
    session, unit = runner.session, runner.repo.units[lock.unit]
    log = session.log_path(unit_slug(lock.unit))
    with session.unit_log(lock.unit, log) as on_line:
        job = runner.job(unit, "apply", log, on_line)
        result = runner.engine.terraform_command(job, ["force-unlock", "-force", lock.lock_id])
    session.ledger.write(
        "lock_released" if result.ok else "lock_release_failed", unit=lock.unit, lock=dict(lock.info)
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


def _identities(
    credentials: UnitCredentials, units: list[Unit], masker: Masker
) -> dict[str, Mapping[str, str]]:
    """The caller identity per account (and role) of the run, for the ledger's audit trail.
    A failure here is recorded, not raised: that account's units fail with the full message."""
    seen: dict[str, Mapping[str, str]] = {}
    for unit in units:
        key = unit.account if not unit.iam_role else f"{unit.account} ({unit.iam_role})"
        if key in seen:
            continue
        try:
            seen[key] = dict(credentials.for_unit(unit).identity)
        except RefarchError as exc:
            seen[key] = {"error": masker.mask(str(exc))}
    return seen


def _git_commit(root: Path, env: Mapping[str, str]) -> str | None:
    try:
        result = capture(["git", "-C", str(root), "rev-parse", "HEAD"], cwd=root, env=env)
    except ToolNotFound:
        return None
    return result.stdout_tail.strip() if result.ok else None


def _shown(path: Path) -> str:
    """`path` as a user typed it: relative to the working folder when it lies below it."""
    try:
        return str(Path(path).relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)


def _git_branch(root: Path, env: Mapping[str, str]) -> str | None:
    try:
        result = capture(["git", "-C", str(root), "rev-parse", "--abbrev-ref", "HEAD"], cwd=root, env=env)
    except ToolNotFound:
        return None
    branch = result.stdout_tail.strip() if result.ok else ""
    return branch if branch and branch != "HEAD" else None  # HEAD: a detached checkout


def _who(sessions: AwsSessions | None, env: Mapping[str, str]) -> dict[str, str]:
    """Who runs this, for the audit trail: the CI's actor, job URL, branch and commit, the
    local user and host, and the base AWS identity (before any role is assumed)."""
    who = {"user": _user(), "host": socket.gethostname(), **ci_context(env)}
    if sessions is not None:
        with contextlib.suppress(RefarchError):  # no identity: the units fail on it, saying why
            who["caller"] = sessions.caller_identity(sessions.base())["Arn"]
    return who


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _version() -> str:
    try:
        return metadata.version("refarch")
    except metadata.PackageNotFoundError:
        return "unknown"
