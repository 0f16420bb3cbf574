"""Which units a run covers: all of the plan's, or with --resume those of an earlier run
that did not succeed there (`auto`: this CI job's unfinished run at this commit)."""

from __future__ import annotations

from pathlib import Path

from refarch.errors import UsageError
from refarch.models import Action
from refarch.runner import saved_plans
from refarch.runner.audit import git_commit
from refarch.runner.context import RunContext, Selection
from refarch.runner.ledger import (
    LedgerStore,
    ResumeSelection,
    ci_context,
    last_of_action,
    load_run,
    resume_selection,
    resume_verb,
)
from refarch.runner.ledger_dynamodb import DynamoLedgerStore


def select(context: RunContext) -> Selection:
    """Which units run: the plan's, or with --resume those of the resumed run that did not
    succeed there (`auto`: this CI job's unfinished run at this commit, if there is one)."""
    plan, action, options, store = context.plan, context.action, context.options, context.store
    if options.rerun_changed and options.resume is None:
        raise UsageError("--rerun-changed only applies to a resumed run", hint="add --resume last")
    ref = options.resume
    # apply --plan-dir: which saved plans the run applies (a retry must not apply them twice)
    plans_id = saved_plans.identity(options.plan_dir, list(plan.units)) if options.plan_dir else None
    if ref == "auto":  # CI: this job's unfinished run at this commit, else a fresh start
        commit = ci_context(context.base_env).get("commit") or git_commit(plan.repo.root, context.base_env)
        ref = unfinished_run(store, action, list(plan.units), commit, plans_id)
    if ref is None:
        return Selection(tuple(plan.units), plans_id=plans_id)
    if ref == "last" and isinstance(store, DynamoLedgerStore):  # this job's last run, not another's
        ref = store.last_of(action, list(plan.units))
    elif ref == "last":  # the last run of this action, not a plan-all before an apply
        ref = last_of_action(store, action)
    past = load_run(plan.repo.root, ref, store=store)
    resumed = resume_selection(past, plan, rerun_changed=options.rerun_changed)
    ran = set(past.units)
    return Selection(
        tuple(u for u in plan.units if u in ran),
        done=resumed.done,
        resumed_from=past.run_id,
        unfinished=past.unfinished,
        notices=tuple(_notices(resumed, action, plan.repo.root, past.run_id)),
        plans_id=plans_id,
    )


def _notices(resumed: ResumeSelection, action: Action, root: Path, run_id: str) -> list[str]:
    """Say which units succeeded in the resumed run and changed since: re-run, or kept."""
    if not resumed.changed:
        return []
    listing = ", ".join(resumed.changed)
    if resumed.rerun:
        return [f"changed since they succeeded, run again (--rerun-changed): {listing}"]
    return [
        f"changed since they succeeded, not run again: {listing} (to run them too: "
        f"refarch {resume_verb(action)} {shown(root)} --resume {run_id} --rerun-changed)"
    ]


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


def shown(path: Path) -> str:
    """`path` as a user typed it: relative to the working folder when it lies below it."""
    try:
        return str(Path(path).relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)
