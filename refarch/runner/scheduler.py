"""A ready queue over the plan's DAG: each unit starts as soon as what it waits for succeeded.

No waves: a slow unit holds back only the units that wait for it. At most `parallelism`
units run at once; among ready units the one with the longest path of work behind it starts
first (by durations from earlier runs when known, else by counting units), which keeps the
makespan near the critical path. A unit that fails stops
everything that waits for it (reported as not run, naming what it waited for); the rest runs
to the end unless `fail_fast`. A `gate` asked before each unit starts can stop the run: it
starts nothing more (a run that lost an account lock), what is running finishes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from refarch.exec.process import Interrupt
from refarch.models import Plan, Status


@dataclass(frozen=True)
class Outcome:
    """How a unit's task ended, as far as scheduling cares."""

    status: Status  # SUCCEEDED | FAILED | INTERRUPTED | NOT_RUN
    message: str = ""
    blocked_by: str | None = None


UnitTask = Callable[[str], Outcome]
StartHook = Callable[[str], None]
Gate = Callable[[str], str | None]  # before a unit starts: None, or why nothing more may start
FinishHook = Callable[[str, Outcome], None]


def plan_waits(
    plan: Plan, units: Iterable[str] | None = None, *, tiers: bool = True
) -> dict[str, tuple[str, ...]]:
    """What each unit of the run waits for: `Plan.ready_after`, kept to the units that run;
    without `tiers` (plans change nothing), its own dependencies only."""
    selected = list(plan.units) if units is None else [u for u in plan.units if u in set(units)]
    inside = set(selected)
    return {
        u: tuple(
            w for w in (plan.ready_after(u) if tiers else plan.units[u].waits_for) if w in inside and w != u
        )
        for u in selected
    }


def schedule(
    order: Sequence[str],
    waits: Mapping[str, Sequence[str]],
    task: UnitTask,
    *,
    parallelism: int = 4,
    fail_fast: bool = False,
    interrupt: Interrupt | None = None,
    on_start: StartHook | None = None,
    on_finish: FinishHook | None = None,
    durations: Mapping[str, float] | None = None,
    gate: Gate | None = None,
    after_failure: bool = False,
) -> dict[str, Outcome]:
    """Run `task(unit)` for every unit of `order`, each once what it `waits` for succeeded.

    Returns an Outcome for every unit of `order`. Units that never started get Status.NOT_RUN
    (blocked by a failure, stopped by `fail_fast`, or by an interrupt). `durations` (seconds
    per unit, e.g. from the previous run) weigh the priority; unknown units get the median.
    `after_failure` (plans): a unit waits for its dependencies to finish, not to succeed, so
    one failure holds nothing back.
    """
    if parallelism < 1:
        raise ValueError("parallelism must be at least 1")
    queue = _ReadyQueue(order, waits, durations, on_finish)
    rules = _Rules(parallelism, fail_fast, on_start, gate, after_failure)
    stopped: str | None = None
    running: dict[Future[Outcome], str] = {}
    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="refarch-unit") as pool:
        while queue.ready or running:
            if interrupt is not None and interrupt.requested.is_set() and stopped is None:
                stopped = "run interrupted before it started"
            if stopped is None:
                stopped = _start_ready(queue, rules, running, lambda unit: pool.submit(task, unit))
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: queue.position[running[f]]):
                unit = running.pop(future)
                stopped = _settle(queue, rules, unit, _outcome_of(future), stopped)
    for unit in order:
        if unit not in queue.outcomes:
            queue.finish(unit, Outcome(Status.NOT_RUN, stopped or "not started"))
    return queue.outcomes


@dataclass(frozen=True)
class _Rules:
    """How the scheduler starts and stops units (schedule()'s options)."""

    parallelism: int
    fail_fast: bool
    on_start: StartHook | None
    gate: Gate | None
    after_failure: bool


class _ReadyQueue:
    """What each unit still waits for, the units ready to start (the heaviest chain of work
    behind them first), and the outcomes so far."""

    def __init__(
        self,
        order: Sequence[str],
        waits: Mapping[str, Sequence[str]],
        durations: Mapping[str, float] | None,
        on_finish: FinishHook | None,
    ) -> None:
        self.position = {u: i for i, u in enumerate(order)}
        self.pending = {u: {w for w in waits.get(u, ()) if w in self.position} for u in order}
        self.dependents: dict[str, list[str]] = {u: [] for u in order}
        for unit, wanted in self.pending.items():
            for dep in wanted:
                self.dependents[dep].append(unit)
        self.depth = _chain_lengths(order, self.dependents, _weights(order, durations))
        self.ready: list[tuple[float, int, str]] = []
        self.outcomes: dict[str, Outcome] = {}
        self.on_finish = on_finish
        for unit in order:
            if not self.pending[unit]:
                self.push(unit)

    def push(self, unit: str) -> None:
        """`unit` is ready: it starts by the weight of the work behind it, then in plan order."""
        heapq.heappush(self.ready, (-self.depth[unit], self.position[unit], unit))

    def finish(self, unit: str, outcome: Outcome) -> None:
        """`unit` ended (or will never start): recorded, and said to the caller."""
        self.outcomes[unit] = outcome
        if self.on_finish is not None:
            self.on_finish(unit, outcome)

    def release(self, unit: str) -> None:
        """`unit` no longer holds its dependents back: those waiting for nothing else are ready."""
        for dependent in self.dependents[unit]:
            self.pending[dependent].discard(unit)
            if not self.pending[dependent] and dependent not in self.outcomes:
                self.push(dependent)

    def block_dependents(self, root: str) -> None:
        """Everything that waits for `root`, directly or not, is not run, naming what it waited for."""
        queue = [root]
        while queue:
            current = queue.pop(0)
            for dependent in self.dependents[current]:
                if dependent in self.outcomes:
                    continue
                if current == root:
                    message = f"waits for {current}, which {_verb(self.outcomes[root].status)}"
                else:
                    message = f"waits for {current}, which was not run ({root} failed)"
                self.finish(dependent, Outcome(Status.NOT_RUN, message, blocked_by=current))
                queue.append(dependent)


def _start_ready(
    queue: _ReadyQueue,
    rules: _Rules,
    running: dict[Future[Outcome], str],
    submit: Callable[[str], Future[Outcome]],
) -> str | None:
    """Start ready units while there is room; a gate that refuses one stops the run (why)."""
    while queue.ready and len(running) < rules.parallelism:
        _, _, unit = heapq.heappop(queue.ready)
        if unit in queue.outcomes:
            continue
        if rules.gate is not None and (refused := rules.gate(unit)) is not None:
            return f"not started: {refused}"
        if rules.on_start is not None:
            rules.on_start(unit)
        running[submit(unit)] = unit
    return None


def _settle(
    queue: _ReadyQueue, rules: _Rules, unit: str, outcome: Outcome, stopped: str | None
) -> str | None:
    """Record a finished unit: release its dependents, or block them (and maybe stop the run:
    an interruption, or --fail-fast). Returns why the run stops, if it does."""
    queue.finish(unit, outcome)
    released = outcome.status == Status.SUCCEEDED
    if rules.after_failure and outcome.status in (Status.FAILED, Status.NOT_RUN):
        released = True
    if released:
        queue.release(unit)
        return stopped
    queue.block_dependents(unit)
    if outcome.status == Status.INTERRUPTED and stopped is None:
        stopped = "run interrupted before it started"
    if rules.fail_fast and outcome.status == Status.FAILED and stopped is None:
        stopped = f"not started: --fail-fast after {unit} failed"
    return stopped


def _outcome_of(future: Future[Outcome]) -> Outcome:
    """A task's outcome; a task that raised is that unit's failure, never the run's end."""
    try:
        return future.result()
    except Exception as exc:
        return Outcome(Status.FAILED, f"{type(exc).__name__}: {exc}")


def _weights(order: Sequence[str], durations: Mapping[str, float] | None) -> dict[str, float]:
    known = sorted(d for u in order if durations and (d := durations.get(u)) is not None)
    default = known[len(known) // 2] if known else 1.0
    return {u: (durations or {}).get(u, default) for u in order}


def _chain_lengths(
    order: Sequence[str], dependents: Mapping[str, list[str]], weights: Mapping[str, float]
) -> dict[str, float]:
    """For each unit, the weight of the heaviest chain of dependents behind it (itself
    included): the priority that starts the critical path first. Iterative, so a chain of
    thousands of units does not hit the recursion limit."""
    lengths: dict[str, float] = {}
    for root in order:
        stack = [(root, False)]
        while stack:
            unit, expanded = stack.pop()
            if unit in lengths:
                continue
            if expanded:
                lengths[unit] = weights[unit] + max((lengths[d] for d in dependents[unit]), default=0.0)
                continue
            stack.append((unit, True))
            stack.extend((d, False) for d in dependents[unit] if d not in lengths)
    return lengths


def _verb(status: Status) -> str:
    return {Status.FAILED: "failed", Status.INTERRUPTED: "was interrupted"}.get(status, f"ended {status}")
