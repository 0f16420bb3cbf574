"""run(): one action over a plan: credentials and the account guard, retries, ledger, report.

The composition of the run package. For each unit, in readiness order: get the account's
credentials (assuming the unit's `iam_role`, else the account role), refuse it if they
belong to another account, run the engine, retry what the catalogue knows to be transient,
and record everything (masked) in the ledger, the unit's log and the report.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from refarch.aws import AwsSessions, refuse_unknown_accounts
from refarch.config.discover import repo_root
from refarch.errors import NoCredentials, ProcessFailed, RefarchError, ToolNotFound, UsageError
from refarch.files import local_dir
from refarch.models import Plan, Unit
from refarch.plan import plan as make_plan
from refarch.repo import load_repo
from refarch.run.engines import ACTIONS, Engine, UnitJob, default_engine_name, make_engine
from refarch.run.ledger import (
    Ledger,
    load_run,
    new_run_id,
    past_durations,
    resume_selection,
    runs_dir,
)
from refarch.run.masking import Masker
from refarch.run.passwords import password_provider
from refarch.run.process import Interrupt, capture
from refarch.run.report import (
    DONE_BEFORE,
    FAILED,
    INTERRUPTED,
    NOT_RUN,
    SUCCEEDED,
    RetryRecord,
    RunReport,
    UnitReport,
    count_statuses,
)
from refarch.run.retry import decide, lock_timeout_from_settings, rules_from_settings
from refarch.run.scheduler import Outcome, plan_waits, schedule
from refarch.run.workdir import unit_slug
from refarch.settings import Settings, load_settings

WORK_DIR = Path(".refarch") / "work"
# Credentials of the caller never reach a unit's process: it gets its account's only.
CALLER_CREDENTIAL_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)
MESSAGE_LINES = 15  # lines of a failing tool's output kept in the report and the ledger


@dataclass(frozen=True)
class RunEvent:
    """What the runner tells its caller, one at a time (never concurrently).

    kinds: run_start, unit_start, line (fields: stream, text — masked), retry (attempt, rule,
    delay, remedy), unit_finish (status, message, attempts, duration, log), run_finish (report).
    """

    kind: str
    unit: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


EventCallback = Callable[[RunEvent], None]
# Extra environment for a unit's process (e.g. data-store passwords from provision.secrets);
# every value it returns is registered as a secret and masked.
ExtraEnv = Callable[[Unit], Mapping[str, str]]


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


class OutputCache:
    """Each unit's outputs, read at most once per run, shared by all its dependents."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, Mapping[str, Any]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self.reads: list[str] = []  # units whose outputs had to be read (not handed over)

    def put(self, path: str, outputs: Mapping[str, Any]) -> None:
        with self._lock:
            self._values[path] = outputs

    def get(self, path: str, read: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
        with self._lock:
            if path in self._values:
                return self._values[path]
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:
            with self._lock:
                if path in self._values:
                    return self._values[path]
            outputs = read()
            with self._lock:
                self._values[path] = outputs
                self.reads.append(path)
            return outputs


@dataclass
class _UnitRecord:
    attempts: int = 0
    duration: float = 0.0
    retries: list[RetryRecord] = field(default_factory=list)
    log_path: str | None = None
    outputs: Mapping[str, Any] | None = None


def run(
    plan: Plan,
    action: str | None = None,
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    parallelism: int = 4,
    on_event: EventCallback | None = None,
    resume: str | None = None,
    fail_fast: bool = False,
    sessions: AwsSessions | None = None,
    credentials: UnitCredentials | None = None,
    sleep: Callable[[float], None] | None = None,
    interrupt: Interrupt | None = None,
    source_override: Path | None = None,
    base_env: Mapping[str, str] | None = None,
    extra_env: ExtraEnv | None = None,
    secrets: Iterable[str] = (),
    rand: Callable[[], float] = random.random,
    history: bool = True,
) -> RunReport:
    """Run `action` ("apply" | "plan" | "destroy" | "output") on every unit of `plan`.

    Units start as soon as what they wait for succeeded (`Plan.ready_after`), at most
    `parallelism` at once. `resume` ("last" or a run id) re-runs only what did not succeed
    in that run. Seams: `engine`, `credentials` (or `sessions`), `sleep` (between retries;
    default: an interruptible wait), `interrupt` (the CLI's Ctrl-C), `base_env` (default
    os.environ), `extra_env` (per-unit secrets such as data-store passwords). With `history`,
    the durations of earlier runs of `action` order the ready units (longest path first).
    """
    action = action or plan.action
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}", hint=f"use one of {', '.join(ACTIONS)}")
    if (action == "destroy") != (plan.action == "destroy"):
        raise UsageError(
            f"the plan was built for {plan.action!r}, not {action!r}",
            hint=f'build it with plan(repo, action="{action}")',
        )
    repo = plan.repo
    settings = settings or repo.settings
    base = dict(os.environ if base_env is None else base_env)
    rules = rules_from_settings(settings)
    lock_timeout = lock_timeout_from_settings(settings)
    if engine is None:
        name = settings.section("engine").get("name") or default_engine_name(base)
        engine = make_engine(str(name), settings)
    if credentials is None:
        sessions = sessions or AwsSessions(settings)
        if sessions.base().get_credentials() is None:  # nothing could run: say so up front
            raise NoCredentials()
        credentials = AwsUnitCredentials(sessions)
    if extra_env is None and sessions is not None:  # bootstrap's passwords, as TF_VAR_<name>
        extra_env = password_provider(replace(repo, settings=settings), sessions)
    interrupt = interrupt or Interrupt()
    resolves_dependencies = bool(getattr(engine, "resolves_dependencies", False))

    selected = list(plan.units)
    done: frozenset[str] = frozenset()
    resumed_from = None
    if resume is not None:
        past = load_run(repo.root, resume)
        done = resume_selection(past, plan)
        selected = [u for u in plan.units if u in set(past.units)]
        resumed_from = past.run_id

    masker = Masker(secrets)
    masker.register([v for k, v in base.items() if k.startswith("TF_VAR_")])  # the caller's
    for path in selected:
        masker.register_inputs(repo.units[path].inputs)
        masker.register_env_values(repo.units[path].inputs, base)  # get_env() values

    run_id = new_run_id()
    log_dir = local_dir(repo.root, "runs", run_id)  # ours alone, or UnsafeLocalState (exit 2)
    work_root = local_dir(repo.root, WORK_DIR.name)
    ledger = Ledger(runs_dir(repo.root) / f"{run_id}.jsonl")
    emit_lock = threading.Lock()

    def emit(kind: str, unit: str | None = None, **fields: Any) -> None:
        if on_event is not None:
            with emit_lock:
                on_event(RunEvent(kind, unit, fields))

    records = {path: _UnitRecord() for path in selected}
    cache = OutputCache()
    child_base = {k: v for k, v in base.items() if k not in CALLER_CREDENTIAL_VARS}

    def child_env(unit: Unit) -> dict[str, str]:
        env = {**child_base, **credentials.for_unit(unit).env}
        if extra_env is not None:
            extra = dict(extra_env(unit))
            masker.register(list(extra.values()))
            env.update(extra)
        return env

    def job_for(unit: Unit, job_action: str, log_path: Path, on_line: Any) -> UnitJob:
        return UnitJob(
            unit=unit,
            action=job_action,
            repo=repo,
            work_root=work_root,
            env=child_env(unit),
            dependency_outputs={},
            log_path=log_path,
            on_line=on_line,
            interrupt=interrupt,
            source_override=source_override,
            endpoint_url=settings.endpoint_url,
        )

    def dependency_outputs(unit: Unit, log_path: Path) -> dict[str, Mapping[str, Any]]:
        found: dict[str, Mapping[str, Any]] = {}
        for dep in unit.dependency_blocks:
            if not dep.enabled or dep.skip_outputs:
                continue
            if dep.path not in repo.units:
                found[dep.name] = dict(dep.mock_outputs or {})
                continue
            target = repo.units[dep.path]

            def read(target: Unit = target) -> Mapping[str, Any]:
                job = job_for(target, "output", log_path, lambda _s, _l: None)
                return engine.read_outputs(job)

            try:
                found[dep.name] = cache.get(dep.path, read)
                masker.register_outputs(found[dep.name])  # those Terraform marks sensitive
            except ProcessFailed:
                allowed = dep.mock_outputs_allowed_terraform_commands or ()
                if dep.mock_outputs is None or action not in allowed:
                    raise
                found[dep.name] = dict(dep.mock_outputs)
        return found

    def wait_before_retry(delay: float) -> None:
        if sleep is not None:
            sleep(delay)
        else:
            interrupt.requested.wait(delay)

    def task(path: str) -> Outcome:
        unit = repo.units[path]
        record = records[path]
        log_path = log_dir / f"{unit_slug(path)}.log"
        record.log_path = str(log_path)
        started = time.monotonic()
        ledger.write("unit_start", unit=path, account=unit.account, log=record.log_path)
        emit("unit_start", path, account=unit.account, log=record.log_path)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        log_lock = threading.Lock()
        with os.fdopen(fd, "a", encoding="utf-8") as log:

            def on_line(stream: str, line: str) -> None:
                text = masker.mask(line)
                with log_lock:
                    log.write(text + "\n")
                    log.flush()
                emit("line", path, stream=stream, text=text)

            try:
                outcome = attempts(unit, record, log_path, on_line)
            except ToolNotFound:
                raise
            except RefarchError as exc:
                message = masker.mask(str(exc))
                on_line("stderr", message)
                outcome = Outcome(FAILED, message)
        record.duration = time.monotonic() - started
        return outcome

    def attempts(unit: Unit, record: _UnitRecord, log_path: Path, on_line: Any) -> Outcome:
        job = job_for(unit, action, log_path, on_line)
        if not resolves_dependencies:
            job = replace(job, dependency_outputs=dependency_outputs(unit, log_path))
        attempt = 1
        while True:
            record.attempts = attempt
            ledger.write("attempt", unit=unit.path, attempt=attempt)
            result = engine.execute(job)
            process = result.process
            if process.ok:
                if result.outputs is not None:
                    masker.register_outputs(result.outputs)  # those Terraform marks sensitive
                    cache.put(unit.path, result.outputs)
                    record.outputs = result.outputs
                return Outcome(SUCCEEDED)
            if process.interrupted or interrupt.requested.is_set():
                return Outcome(INTERRUPTED, "interrupted")
            decision = decide(rules, process, attempt, rand=rand)
            if not decision.retry or decision.rule is None:
                tail = "\n".join(process.output_tail.splitlines()[-MESSAGE_LINES:])
                reason = "" if decision.rule is None else f" ({decision.reason})"
                return Outcome(
                    FAILED, masker.mask(f"exit code {process.returncode}{reason}\n{tail}".rstrip())
                )
            retry = RetryRecord(attempt, decision.rule.name, decision.delay, decision.remedy)
            record.retries.append(retry)
            ledger.write(
                "retry",
                unit=unit.path,
                attempt=attempt,
                rule=retry.rule,
                delay=round(retry.delay, 3),
                remedy=retry.remedy,
            )
            emit(
                "retry",
                unit.path,
                attempt=attempt,
                rule=retry.rule,
                delay=retry.delay,
                remedy=retry.remedy,
                attempts=decision.rule.attempts,
            )
            wait_before_retry(decision.delay)
            if interrupt.requested.is_set():
                return Outcome(INTERRUPTED, "interrupted while waiting to retry")
            if decision.remedy == "refresh_modules":
                job = replace(job, refresh_modules=True)
            elif decision.remedy == "refresh_credentials":
                job = replace(job, env=child_env(unit))  # AwsSessions renews expired keys
            elif decision.remedy == "wait_for_lock":
                job = replace(job, lock_timeout=lock_timeout)
            attempt += 1

    def on_finish(path: str, outcome: Outcome) -> None:
        record = records[path]
        ledger.write(
            "unit_finish",
            unit=path,
            status=outcome.status,
            attempts=record.attempts,
            duration=round(record.duration, 3),
            log=record.log_path,
            message=outcome.message,
            blocked_by=outcome.blocked_by,
        )
        emit(
            "unit_finish",
            path,
            status=outcome.status,
            message=outcome.message,
            attempts=record.attempts,
            duration=record.duration,
            log=record.log_path,
            blocked_by=outcome.blocked_by,
        )

    started = time.time()
    outcomes: dict[str, Outcome] = {}
    try:
        identities = _identities(credentials, [repo.units[p] for p in selected], masker)
        ledger.write(
            "run_start",
            run_id=run_id,
            action=action,
            engine=engine.name,
            repo=str(repo.root),
            git_commit=_git_commit(repo.root, base),
            refarch_version=_version(),
            parallelism=parallelism,
            fail_fast=fail_fast,
            resumed_from=resumed_from,
            units=selected,
            digests={p: repo.units[p].digest for p in selected},
            identities=identities,
        )
        emit(
            "run_start",
            run_id=run_id,
            action=action,
            engine=engine.name,
            units=selected,
            done_before=sorted(done),
            ledger=str(ledger.path),
            identities=identities,
        )
        for path in selected:
            if path in done:
                on_finish(path, Outcome(DONE_BEFORE, f"succeeded in run {resumed_from}"))
        order = [p for p in selected if p not in done]
        outcomes = schedule(
            order,
            plan_waits(plan, selected),
            task,
            parallelism=parallelism,
            fail_fast=fail_fast,
            interrupt=interrupt,
            on_finish=on_finish,
            durations=past_durations(repo.root, action) if history else None,
        )
    finally:
        if interrupt.requested.is_set():
            ledger.write("run_interrupted")
        units = {
            path: UnitReport(
                path=path,
                account=repo.units[path].account,
                status=DONE_BEFORE
                if path in done
                else outcomes.get(path, Outcome(NOT_RUN, "the run stopped")).status,
                attempts=records[path].attempts,
                duration=records[path].duration,
                retries=tuple(records[path].retries),
                log_path=records[path].log_path,
                message=(
                    f"succeeded in run {resumed_from}"
                    if path in done
                    else outcomes.get(path, Outcome(NOT_RUN, "the run stopped")).message
                ),
                blocked_by=outcomes[path].blocked_by if path in outcomes else None,
            )
            for path in selected
        }
        report = RunReport(
            run_id=run_id,
            action=action,
            engine=engine.name,
            started=started,
            finished=time.time(),
            units=units,
            ledger_path=str(ledger.path),
            resumed_from=resumed_from,
            interrupted=interrupt.requested.is_set(),
            counts=count_statuses(units),
            outputs={
                p: masker.mask_outputs(r.outputs)
                for p, r in records.items()
                if r.outputs is not None and action == "output"
            },
            output_reads=tuple(cache.reads),
        )
        ledger.write(
            "run_finish",
            counts=dict(report.counts),
            exit_code=report.exit_code,
            duration=round(report.duration, 3),
        )
        ledger.close()
    emit("run_finish", report=report)
    return report


def load_plan(
    directory: str | Path,
    action: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    ignore_dependencies: bool = False,
    endpoint_url: str | None = None,
    cache: bool = True,
    env: Mapping[str, str] | None = None,
    allow_unknown_account: bool = False,
) -> Plan:
    """Load the live repo at `directory` (with `--endpoint-url` over refarch.toml) and plan
    `action` on it: what `refarch apply DIR` runs, for a caller to inspect or confirm first.
    apply and destroy refuse units of an unknown account unless `allow_unknown_account`."""
    env = dict(os.environ) if env is None else dict(env)
    root = Path(directory).resolve()
    settings = load_settings(repo_root(root), env).with_overrides(endpoint_url=endpoint_url)
    repo = load_repo(root, env=env, settings=settings, cache=cache)
    plan = make_plan(repo, action, include=include, exclude=exclude, ignore_dependencies=ignore_dependencies)
    if action in ("apply", "destroy") and not allow_unknown_account:
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


def _version() -> str:
    try:
        return metadata.version("refarch")
    except metadata.PackageNotFoundError:
        return "unknown"
