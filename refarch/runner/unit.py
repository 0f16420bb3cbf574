"""One unit of a run: its account's credentials, its dependencies' outputs, its attempts.

The unit runner turns a unit path into an Outcome for the scheduler. Policy that is not the
runner's (which extra environment a unit gets, e.g. data-store passwords) is passed in.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from refarch import telemetry
from refarch.engines import Engine, EngineResult, UnitJob
from refarch.engines.base import resource_changes
from refarch.engines.workdir import unit_slug
from refarch.errors import ProcessFailed, RefarchError
from refarch.events import RunNotice, UnitRetried, UnitStarted
from refarch.exec.process import LineCallback, ProcessResult, processes_in, tools_not_ours
from refarch.exec.retry import (
    Attempted,
    Decision,
    RetryRule,
    UnitRules,
    attempt_loop,
    decide_for_unit,
    lock_timeout_from_settings,
    unit_rules,
)
from refarch.files import local_dir, remove
from refarch.models import Action, Repo, RetryRecord, Status, Unit
from refarch.policy import Finding, judge
from refarch.policy import check as check_plan
from refarch.runner.context import ExtraEnv, RunContext, UnitAccess, UnitCredentials
from refarch.runner.recovery import (
    move_aside,
    pending_recovery,
    push_back,
    recover_command,
    recovery_folder,
)
from refarch.runner.saved_plans import (
    IN_PLACE,
    NOTHING_TO_APPLY,
    STALE_PLAN,
    SavedPlans,
    outputs_digest,
    stale_outputs,
)
from refarch.runner.scheduler import Outcome
from refarch.runner.session import RunSession, UnitRecord
from refarch.runner.state_locks import StaleLock, left_by_attempt, lock_record, printed_lock_id, who_am_i
from refarch.settings import PolicyRuleSettings

# the types of the run context a unit needs, importable from here as before
__all__ = ["ExtraEnv", "Fenced", "UnitAccess", "UnitCredentials", "UnitRunner", "output_digests"]

# Credentials of the caller never reach a unit's process: it gets its account's only.
CALLER_CREDENTIAL_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",  # web identity (OIDC in CI): the tool would assume the caller's role itself
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",  # ECS/CodeBuild task credentials
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
)
# Terraform's S3 backend when the state's digest in DynamoDB is not that of the state in S3.
DIGEST_MISMATCH = "does not have the expected content"
DIGEST_REPAIRED = RetryRule("state-digest-repaired", DIGEST_MISMATCH, attempts=2, backoff="fixed", delay=0.0)
MESSAGE_LINES = 15  # lines of a failing tool's output kept in the report and the ledger
LOCK_BUSY = "Error acquiring the state lock"  # Terraform's words: the lock was someone else's
UNLOCK_FAILED = "Error releasing the state lock"  # ... and: it could not reach the backend to unlock
# An attempt whose Terraform found its own lock (released by release_left_lock): tried again at
# once, up to 3 attempts, whatever the state-lock rule has left (a doubled lock request inside a
# -lock-timeout wait used its last attempt).
OWN_LOCK_RELEASED = RetryRule("state-lock-released", LOCK_BUSY, attempts=3, backoff="fixed", delay=0.0)
RELEASE_TRIES, RELEASE_DELAY = 12, 5.0  # how long to wait for the backend to release a lock left
LEFTOVER_WAIT = 600.0  # seconds a dead run's tools get to stop (the watchdog's grace period)


class Fenced(RefarchError):
    """The run lost the account lock of the unit it was about to run: nothing more starts."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"stopped before running Terraform: {reason}")


@dataclass(frozen=True)
class UnitRunner:
    """Runs `action` on one unit at a time, for the scheduler: `runner(path) -> Outcome`."""

    context: RunContext
    session: RunSession
    saved_plans: SavedPlans | None = None  # plan --out-dir / apply --plan-dir
    who: str = field(default_factory=who_am_i)  # Terraform's `Who` of the locks we take
    resuming: bool = False  # --resume: push moved-aside state back before running its unit
    # --resume: units the dead run started and never finished (its state digest may be
    # repaired: `RunContext.digest_repair`)
    dead_units: frozenset[str] = frozenset()
    # apply/destroy with account locks: asked right before each attempt runs the tool; None,
    # or why this run may not (it lost the unit's account lock while it was paused).
    fence: Callable[[str], str | None] | None = None

    @property
    def repo(self) -> Repo:
        """The live repo of the run."""
        return self.context.plan.repo

    @property
    def action(self) -> Action:
        """What the run does to each unit."""
        return self.context.action

    @property
    def engine(self) -> Engine:
        """What runs the unit's tool."""
        return self.context.engine

    def __call__(self, path: str) -> Outcome:
        unit = self.repo.units[path]
        record = self.session.records[path]
        log_path = self.session.log_path(unit_slug(path))
        record.log_path = str(log_path)
        started = time.monotonic()
        self.session.ledger.write(
            "unit_start",
            unit=path,
            account=unit.account,
            log=record.log_path,
            lock=lock_record(unit, self.who),  # what --resume may release if this run dies
        )
        self.session.emit(UnitStarted(path, unit.account, record.log_path))
        with (
            telemetry.unit_span(path, unit.account, unit.tier, str(self.action)) as span,
            self.session.unit_log(path, log_path) as on_line,
        ):
            try:
                outcome = self._attempts(unit, record, log_path, on_line)
            except Fenced as exc:
                on_line("stderr", str(exc))
                status = Status.NOT_RUN if record.attempts == 0 else Status.FAILED
                outcome = Outcome(status, f"not started: {exc.reason}" if record.attempts == 0 else str(exc))
            except RefarchError as exc:  # a missing hook binary too: this unit fails, the run goes on
                message = self.session.masker.mask(str(exc))
                on_line("stderr", message)
                outcome = Outcome(Status.FAILED, message)
            telemetry.set_result(span, result=str(outcome.status), attempts=record.attempts)
        record.duration = time.monotonic() - started
        return outcome

    # -- one unit -------------------------------------------------------------------------
    def child_env(self, unit: Unit) -> dict[str, str]:
        """The unit's complete environment: the caller's without its AWS credentials, the
        account's credentials, and the extra environment (registered as secrets)."""
        base = {k: v for k, v in self.context.base_env.items() if k not in CALLER_CREDENTIAL_VARS}
        env = {**base, **self.context.credentials.for_unit(unit).env}
        if self.context.extra_env is not None:
            extra = dict(self.context.extra_env(unit))
            self.session.masker.register(list(extra.values()))
            env.update(extra)
        return env

    def policy_gate(self, unit: Unit, findings: Iterable[Finding], record: UnitRecord) -> str | None:
        """Apply's policy check of one unit's plan: each finding kept in the unit's record (the
        report lists them), each waived deny finding recorded in the ledger with its reason;
        the refusal message when a deny finding is not waived."""
        verdict = judge(unit.path, findings, self.context.settings.policy.waivers)
        record.policy = verdict.rows()
        for finding, reason in verdict.waived:
            self.session.ledger.write(
                "policy_waived", unit=unit.path, rule=finding.rule, address=finding.address, reason=reason
            )
        if not verdict.refused:
            return None
        self.session.ledger.write(
            "policy_denied",
            unit=unit.path,
            findings=[{"rule": f.rule, "address": f.address} for f in verdict.denied],
        )
        return verdict.message()

    def checked_apply(
        self, unit: Unit, job: UnitJob, rules: tuple[PolicyRuleSettings, ...], record: UnitRecord
    ) -> EngineResult:
        """A plain apply under `[policy] check_apply`: plan to a file (in a 0700 folder of the
        repo's .refarch/), check the plan's document, apply exactly that plan; the file holds
        every planned value and is removed after."""
        plan_file = local_dir(self.repo.root, "checked") / f"{unit_slug(unit.path)}.tfplan"
        try:
            planned = self.engine.execute(replace(job, action="plan", plan_file=plan_file))
            if not planned.process.ok:
                return planned
            refusal = (
                self.policy_gate(unit, check_plan(planned.document, rules), record)
                if planned.document is not None
                else f"policy: the {self.engine.name} engine gave no plan document to check: nothing applied"
            )
            if refusal is not None:
                refused = replace(planned.process, returncode=1, stdout_tail="", stderr_tail=refusal)
                return EngineResult(refused, None)
            return self.engine.execute(replace(job, plan_file=plan_file))
        finally:
            remove(plan_file)

    def job(self, unit: Unit, action: str, log_path: Path, on_line: LineCallback) -> UnitJob:
        return UnitJob(
            unit=unit,
            action=action,
            repo=self.repo,
            work_root=self.context.work_root,
            env=self.child_env(unit),
            dependency_outputs={},
            log_path=log_path,
            on_line=on_line,
            interrupt=self.context.interrupt,
            source_override=self.context.options.source_override,
            endpoint_url=self.context.settings.endpoint_url,
        )

    def dependency_outputs(
        self, unit: Unit, log_path: Path, mocked: list[str] | None = None, missing: list[str] | None = None
    ) -> dict[str, Mapping[str, Any]]:
        """Each enabled dependency's outputs, read once per run. A dependency without outputs
        (never applied) gives its `mock_outputs` where allowed, as Terragrunt does: for every
        command when `mock_outputs_allowed_terraform_commands` is not set. The dependencies
        whose mocks were used are added to `mocked`; those with neither outputs nor mocks to
        `missing`."""
        found: dict[str, Mapping[str, Any]] = {}
        mocked = [] if mocked is None else mocked
        missing = [] if missing is None else missing
        for dep in unit.dependency_blocks:
            if not dep.enabled or dep.skip_outputs:
                continue
            if dep.path not in self.repo.units:
                found[dep.name] = dict(dep.mock_outputs or {})
                mocked.extend([dep.path] if dep.mock_outputs else [])
                continue
            target = self.repo.units[dep.path]

            def read(target: Unit = target) -> Mapping[str, Any]:
                return self.engine.read_outputs(self.job(target, "output", log_path, lambda _s, _l: None))

            allowed = dep.mock_outputs_allowed_terraform_commands
            may_mock = dep.mock_outputs is not None and (allowed is None or self.action in allowed)
            try:
                found[dep.name] = self.session.outputs.get(dep.path, read)
                self.session.masker.register_outputs(found[dep.name])  # those Terraform marks sensitive
            except ProcessFailed:
                if not may_mock:
                    raise
                found[dep.name] = {}
            if not found[dep.name] and may_mock:
                found[dep.name] = dict(dep.mock_outputs or {})  # not applied yet, as Terragrunt does
                mocked.append(dep.path)
            elif not found[dep.name]:
                missing.append(dep.path)
        return found

    def stale_inputs(self, unit: Unit, saved: SavedPlans, log_path: Path) -> str | None:
        """apply --plan-dir: why the unit's saved plan is stale because the outputs of its
        dependencies are not those it was planned with (an earlier unit of this apply, or
        another run, changed them), or None."""
        recorded = saved.planned_outputs(unit.path)
        if not recorded:
            return None
        again = f"plan it again (refarch plan-all DIR --out-dir {saved.folder})"
        try:
            now = output_digests(unit, self.dependency_outputs(unit, log_path))
        except RefarchError as exc:
            return f"saved plan is stale: the outputs of its dependencies cannot be read ({exc}); {again}"
        changed = stale_outputs(recorded, now)
        if not changed:
            return None
        return (
            f"saved plan is stale: the outputs of {', '.join(changed)} changed since it was made "
            f"(applied since, maybe earlier in this run); {again}"
        )

    def rescue_state(self, job: UnitJob, record: UnitRecord) -> list[Path]:
        """Move the state files Terraform left in the unit's working folders to
        .refarch/recovery/<run>/<unit>/, record them, and say how to push them back."""
        files = self.engine.state_files(job) if hasattr(self.engine, "state_files") else []
        if not files:
            return []
        target = recovery_folder(self.repo.root, self.session.run_id, job.unit.path)
        moved = move_aside(files, target)
        record.rescued += moved
        command = recover_command(self.repo.root, self.session.run_id, job.unit.path)
        self.session.ledger.write(
            "state_rescued", unit=job.unit.path, files=[str(f) for f in moved], command=command
        )
        text = (
            f"Terraform state that was not saved to the backend is kept in {target}: "
            f"push it back with `{command}` before anything else runs on {job.unit.path}"
        )
        self.session.emit(RunNotice(text, job.unit.path))
        return moved

    def wait_for_leftovers(self, unit: Unit) -> list[int]:
        """Wait until no process works in the unit's working folder any more: the tools of a
        run that died (SIGKILL, OOM) stop there after their watchdog's SIGINT, and a working
        folder is never shared between two runs. Returns those still there after the wait."""
        folder = self.context.work_root / unit_slug(unit.path)
        if not folder.is_dir():
            return []
        waiting = processes_in(folder)
        if not waiting:
            return []
        text = f"waiting for the tools of a run that died to stop in {folder} (pids {waiting})"
        self.session.ledger.write("waiting_for_leftovers", unit=unit.path, pids=waiting)
        self.session.emit(RunNotice(text, unit.path))
        deadline = time.monotonic() + LEFTOVER_WAIT
        while waiting and time.monotonic() < deadline and not self.context.interrupt.requested.is_set():
            self.context.interrupt.requested.wait(0.2)
            waiting = processes_in(folder)
        return waiting

    def release_left_lock(self, job: UnitJob, started: float, process: ProcessResult) -> bool:
        """After a failed attempt: release the state lock its own Terraform took and left, so
        that no lock is stranded: killed, or the backend unreachable when it tried to unlock,
        or its lock request sent twice (the AWS SDK retried a PutItem whose response was lost
        after it had taken the lock; Terraform then says the lock is held, by itself). Only a
        lock with our Who, created while the attempt ran; after "Error acquiring the state
        lock" also only the lock Terraform printed, and only while no Terraform this process
        did not start runs on this machine. A backend still unreachable is waited for a while.
        True when a lock was released."""
        lock = lock_record(job.unit, self.who)
        output = process.output_tail
        if lock is None or self.context.lock_reader is None:
            return False
        printed = printed_lock_id(output) if LOCK_BUSY in output else None
        if LOCK_BUSY in output and (printed is None or tools_not_ours() != []):
            return False  # someone else's, or it may be: Terraform's own message stands
        ended = time.time()
        tries = RELEASE_TRIES if UNLOCK_FAILED in output else 1
        path = job.unit.path
        for number in range(tries):
            if number:
                self.context.sleep(RELEASE_DELAY)
            if self.context.interrupt.requested.is_set():
                break
            try:
                item = self.context.lock_reader(job.unit, lock)
                left = left_by_attempt(job.unit, lock, item, started, ended)
                if left is None or printed not in (None, left.lock_id):
                    continue  # not ours, not there, or the backend cannot be read yet
                released = self.engine.terraform_command(job, ["force-unlock", "-force", left.lock_id]).ok
            except RefarchError:  # no credentials for the account just now: as unreadable
                continue
            self._lock_released(path, left, released, own_request=printed is not None)
            if released:
                return True
        if UNLOCK_FAILED in output:
            text = f"Terraform could not release the state lock of {path}; see its log"
            self.session.emit(RunNotice(text, path))
        return False

    def _lock_released(self, path: str, left: StaleLock, released: bool, *, own_request: bool) -> None:
        """Record (and, when it worked, say) the release of a lock an attempt left."""
        how = "own_request" if own_request else "left"
        event = "lock_released" if released else "lock_release_failed"
        self.session.ledger.write(event, unit=path, lock=dict(left.info), cause=how)
        if not released:
            return
        if own_request:
            text = (
                f"released the state lock {left.lock_id} that the failed attempt's own Terraform held "
                "(its lock request was sent again after the first had taken the lock)"
            )
        else:
            text = f"released the state lock {left.lock_id} that the failed attempt's Terraform left"
        self.session.emit(RunNotice(text, path))

    def repair_digest(self, unit: Unit, process: ProcessResult) -> bool:
        """--resume, for a unit the dead run left unfinished: when Terraform says the state in
        S3 does not match the digest in DynamoDB (it was killed between writing the one and
        the other), write the digest of what is in S3, as Terraform's own message says to do
        by hand; recorded in the ledger and said. Never for a unit of a live or unknown run."""
        if self.context.digest_repair is None or unit.path not in self.dead_units:
            return False
        if DIGEST_MISMATCH not in process.output_tail:
            return False
        try:
            digest = self.context.digest_repair(unit)
        except RefarchError:
            return False
        if digest is None:
            return False
        self.session.ledger.write("state_digest_repaired", unit=unit.path, digest=digest)
        text = (
            f"{unit.path}: its state digest in DynamoDB did not match its state in S3 (the dead run's "
            f"Terraform was killed between the two writes); set it to {digest} and tried again"
        )
        self.session.emit(RunNotice(text, unit.path))
        return True

    def push_waiting(self, job: UnitJob, waiting: list[Path]) -> list[Path]:
        """--resume: push the unit's moved-aside state back (oldest first), record each push
        in the ledger and say so; returns what is still waiting (after a failed push)."""
        path = job.unit.path
        for pushed in push_back(self.engine, job, waiting):
            run = pushed.file.parent.parent.name
            event = "state_pushed" if pushed.ok else "state_push_failed"
            self.session.ledger.write(event, unit=path, file=str(pushed.file), rescued_by=run)
            if pushed.ok:
                text = f"pushed back the state that run {run} could not save ({pushed.file}), then resumed"
            else:
                last = (pushed.message.strip().splitlines() or ["terraform state push failed"])[-1]
                text = (
                    f"could not push back the state kept in {pushed.file}: {self.session.masker.mask(last)}"
                )
            self.session.emit(RunNotice(text, path))
        return pending_recovery(self.repo.root, path)

    def _attempts(self, unit: Unit, record: UnitRecord, log_path: Path, on_line: LineCallback) -> Outcome:
        """The unit's turn: the checks that may end it before its tool runs (a saved plan,
        outputs it needs, what a dead run left), then its attempts, then how they ended."""
        job = self.job(unit, self.action, log_path, on_line)
        tries = _Tries(
            unit, record, job, from_plan=self.saved_plans is not None and self.action == Action.APPLY
        )
        if self.saved_plans is not None and tries.from_plan:  # its inputs are in the saved plan
            verdict = self._saved_plan_verdict(unit, record, self.saved_plans, log_path)
            if verdict is not None:
                return verdict
        if self.saved_plans is not None:
            tries.job = replace(tries.job, plan_file=self.saved_plans.plan_file(unit.path))
        missing: list[str] = []  # dependencies with neither outputs nor mocks
        self._read_dependency_outputs(tries, log_path, missing)
        if missing and self.action == Action.PLAN:  # a plan needs them: say what to apply first
            return Outcome(
                Status.NOT_RUN,
                f"waits for {', '.join(missing)} to be applied (no outputs yet, and no mock_outputs)",
                blocked_by=missing[0],
            )
        blocked = self._clear_leftovers(tries.job, record)
        if blocked is not None:
            return blocked
        own_rules = unit_rules(self.context.rules, unit.errors)  # its errors { retry / ignore } blocks first
        done = attempt_loop(
            lambda number, remedies: self._attempt(tries, number, remedies),
            lambda result, number: self._decide(tries, own_rules, result, number),
            sleep=self.context.sleep,
            on_retry=lambda number, decision: self._on_retry(tries, number, decision),
            stop=lambda: self.context.interrupt.requested.is_set() or bool(tries.rescued),
        )
        return self._outcome(tries, done)

    def _saved_plan_verdict(
        self, unit: Unit, record: UnitRecord, saved: SavedPlans, log_path: Path
    ) -> Outcome | None:
        """apply --plan-dir: how the unit ends without running its tool (its saved plan was
        applied already, refused by policy, stale, or changes nothing), or None to apply it."""
        applied_by = saved.applied_by(unit.path)
        if applied_by is not None:  # this folder was applied before: nothing left to apply
            return Outcome(Status.SUCCEEDED, f"its saved plan was already applied by run {applied_by}")
        checked = saved.checked.get(unit.path, {})
        refusal = self.policy_gate(unit, map(Finding.from_json, checked.get("policy") or ()), record)
        if refusal is not None:
            return Outcome(Status.FAILED, refusal)
        stale = self.stale_inputs(unit, saved, log_path)
        if stale is not None:
            return Outcome(Status.FAILED, stale)
        if not saved.has_changes(unit.path):
            return Outcome(Status.SUCCEEDED, NOTHING_TO_APPLY)
        return None

    def _read_dependency_outputs(self, tries: _Tries, log_path: Path, missing: list[str]) -> None:
        """Give the unit its dependencies' outputs when the engine does not read them itself
        (and note their digests when a plan is saved: apply compares them)."""
        resolves = getattr(self.engine, "resolves_dependencies", False)
        if tries.from_plan or (resolves and self.saved_plans is None):
            return
        found = self.dependency_outputs(tries.unit, log_path, tries.mocked, missing)
        tries.planned_with = output_digests(tries.unit, found)
        if not resolves:
            tries.job = replace(tries.job, dependency_outputs=found)

    def _clear_leftovers(self, job: UnitJob, record: UnitRecord) -> Outcome | None:
        """What a run that died left in the unit's way: its tools still working there (waited
        for), its unsaved state (moved aside; pushed back on --resume). The unit's failure
        when something is still in the way, else None."""
        unit = job.unit
        leftover = self.wait_for_leftovers(unit)
        if leftover:
            return Outcome(
                Status.FAILED,
                f"processes of a run that died still work in {self.context.work_root / unit_slug(unit.path)} "
                f"(pids {', '.join(map(str, leftover))}): wait for them to stop, then resume",
            )
        self.rescue_state(job, record)  # left by a run that died: moved aside, never overwritten
        waiting = pending_recovery(self.repo.root, unit.path)
        if waiting and self.action != Action.OUTPUT and self.resuming:
            waiting = self.push_waiting(job, waiting)
        if waiting and self.action != Action.OUTPUT:
            command = recover_command(self.repo.root, waiting[0].parent.parent.name, unit.path)
            return Outcome(
                Status.FAILED,
                f"Terraform state that a run could not save is waiting in {waiting[0].parent}: push it "
                f"back with `{command}` before running {unit.path}",
            )
        return None

    def _attempt(
        self, tries: _Tries, number: int, remedies: frozenset[str]
    ) -> tuple[ProcessResult, Mapping[str, Any] | None]:
        """One attempt: fenced, recorded, run with the remedies earlier retries asked for; a
        plan saved, or what a failure left (state, a lock, a bad digest) dealt with."""
        unit, record = tries.unit, tries.record
        if self.fence is not None and (refused := self.fence(unit.path)) is not None:
            raise Fenced(refused)  # the last moment before the tool: it must still be ours
        record.attempts = number
        self.session.ledger.write("attempt", unit=unit.path, attempt=number)
        this = replace(
            tries.job,
            refresh_modules="refresh_modules" in remedies,
            lock_timeout=lock_timeout_from_settings(self.context.settings)
            if "wait_for_lock" in remedies
            else None,
        )
        if "refresh_credentials" in remedies:  # AwsSessions renews expired keys
            this = replace(this, env=self.child_env(unit))
        started = time.time()
        reason = record.retries[-1].rule if record.retries else None  # why this attempt
        rules = self.context.policy_rules if this.action == "apply" and this.plan_file is None else None
        with telemetry.attempt_span(number, reason) as span:
            result = (
                self.engine.execute(this) if rules is None else self.checked_apply(unit, this, rules, record)
            )
            code = result.process.returncode
            telemetry.set_result(span, result="ok" if result.process.ok else f"exit {code}")
        if result.process.ok and result.plan is not None and self.saved_plans is not None:
            summary = self.saved_plans.save(
                unit,
                result.plan,
                mocked=tries.mocked,
                dependency_outputs=tries.planned_with,
                document=result.document,
            )
            findings = map(Finding.from_json, summary.get("policy") or ())  # what apply will judge
            record.policy = judge(unit.path, findings, self.context.settings.policy.waivers).rows()
        if result.process.ok and tries.from_plan and self.saved_plans is not None:
            self.saved_plans.mark_applied(unit.path, self.session.run_id)
        if not result.process.ok:
            tries.rescued.extend(self.rescue_state(tries.job, record))
            released = self.release_left_lock(tries.job, started, result.process)
            if released and LOCK_BUSY in result.process.output_tail:
                tries.released.append(number)
            if not tries.repaired and self.repair_digest(unit, result.process):
                tries.repaired.append(number)
        return result.process, result.outputs

    def _decide(self, tries: _Tries, own_rules: UnitRules, result: ProcessResult, number: int) -> Decision:
        """Whether a failed attempt is tried again: once after a repaired digest, else as
        the unit's rules and the catalogue say."""
        if tries.repaired and tries.repaired[-1] == number:  # once: the digest now matches the state
            return Decision(True, "state digest repaired", DIGEST_REPAIRED, delay=0.0)
        if tries.released and tries.released[-1] == number < OWN_LOCK_RELEASED.attempts:
            return Decision(
                True, "its own state lock released", OWN_LOCK_RELEASED, delay=0.0, remedy="wait_for_lock"
            )
        return decide_for_unit(own_rules, result, number, rand=self.context.rand)

    def _on_retry(self, tries: _Tries, number: int, decision: Decision) -> None:
        """A retry is recorded (unit record, ledger) and shown before the wait."""
        assert decision.rule is not None
        retry = RetryRecord(number, decision.rule.name, decision.delay, decision.remedy)
        tries.record.retries.append(retry)
        path = tries.unit.path
        self.session.ledger.write(
            "retry",
            unit=path,
            attempt=number,
            rule=retry.rule,
            delay=round(retry.delay, 3),
            remedy=retry.remedy,
        )
        self.session.emit(
            UnitRetried(path, number, decision.rule.attempts, retry.rule, retry.delay, retry.remedy)
        )

    def _outcome(self, tries: _Tries, done: Attempted[Mapping[str, Any] | None]) -> Outcome:
        """How the attempts ended, for the scheduler: an ignored error, a success (its
        changes and outputs recorded), an interruption, or a failure with the output's tail."""
        unit, record, process = tries.unit, tries.record, done.result
        if done.decision is not None and done.decision.ignored:  # an errors { ignore } block
            signals = done.decision.signals
            self.session.ledger.write(
                "error_ignored", unit=unit.path, reason=done.decision.reason, signals=dict(signals)
            )
            why = done.decision.reason + (
                f"; signals {json.dumps(dict(signals), sort_keys=True)}" if signals else ""
            )
            return Outcome(Status.SUCCEEDED, self.session.masker.mask(why))
        if process.ok:
            if self.action in (Action.APPLY, Action.DESTROY, Action.PLAN):
                record.changes = resource_changes(process.output_tail)
            if done.value is not None:
                self.session.masker.register_outputs(done.value)  # those Terraform marks sensitive
                self.session.outputs.put(unit.path, done.value)
                record.outputs = done.value
            if tries.mocked and self.action == Action.PLAN:
                return Outcome(Status.SUCCEEDED, f"plan on mock outputs of {', '.join(tries.mocked)}")
            return Outcome(Status.SUCCEEDED)
        if done.stopped and not process.interrupted and done.decision is not None and done.decision.retry:
            return Outcome(Status.INTERRUPTED, "interrupted while waiting to retry")
        if process.interrupted or self.context.interrupt.requested.is_set():
            return Outcome(Status.INTERRUPTED, "interrupted")
        if tries.from_plan and STALE_PLAN in process.output_tail and self._reviewed_changes_in_place(tries):
            return Outcome(Status.SUCCEEDED, IN_PLACE)
        tail = "\n".join(process.output_tail.splitlines()[-MESSAGE_LINES:])
        if tries.rescued:
            command = recover_command(self.repo.root, self.session.run_id, unit.path)
            tail += (
                f"\nTerraform could not save the state; it is kept in {tries.rescued[0].parent} "
                f"(not retried: another attempt would fork it). Push it back with `{command}`."
            )
        decision = done.decision
        reason = "" if decision is None or decision.rule is None else f" ({decision.reason})"
        return Outcome(
            Status.FAILED,
            self.session.masker.mask(f"exit code {process.returncode}{reason}\n{tail}".rstrip()),
        )

    def _reviewed_changes_in_place(self, tries: _Tries) -> bool:
        """Terraform refused a saved plan as stale: the unit's state moved since the plan was
        made (a job killed right after its apply wrote the state, before the run recorded it;
        or another run). The configuration is the reviewed one (its digests were checked), so
        a fresh plan that changes nothing means the reviewed changes are in place: nothing is
        left to apply. Any change, or a plan that cannot be made, keeps the refusal."""
        job, mocked, missing = tries.job, list[str](), list[str]()
        if not getattr(self.engine, "resolves_dependencies", False):
            found = self.dependency_outputs(tries.unit, job.log_path, mocked, missing)
            job = replace(job, dependency_outputs=found)
        if mocked or missing:
            return False
        with tempfile.TemporaryDirectory(prefix="refarch-fresh-plan-") as folder:  # 0700: plans hold secrets
            fresh = self.engine.execute(replace(job, action="plan", plan_file=Path(folder) / "fresh.tfplan"))
        return fresh.process.ok and fresh.plan is not None and not fresh.plan.has_changes


@dataclass
class _Tries:
    """One unit's attempts under way: the job they run, what it was planned with, and what
    the failed ones left (state moved aside, the attempts after which a digest was repaired
    or their own lock released)."""

    unit: Unit
    record: UnitRecord
    job: UnitJob
    from_plan: bool  # apply --plan-dir: the saved plan is applied, its inputs are in it
    mocked: list[str] = field(default_factory=list)  # a saved plan made with mock outputs must not be applied
    planned_with: dict[str, str] = field(default_factory=dict)  # plan --out-dir: digests of the outputs used
    rescued: list[Path] = field(default_factory=list)
    repaired: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)  # attempts whose Terraform found its own lock


def output_digests(unit: Unit, found: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Each dependency's outputs (by block name, as `dependency_outputs` gives them) as a
    digest, by the dependency's path."""
    return {dep.path: outputs_digest(found[dep.name]) for dep in unit.dependency_blocks if dep.name in found}
