"""Scheduler benchmark: makespan of refarch.run() on synthetic DAGs against the lower bound.

A stand-in engine sleeps a fixed duration per unit. For each DAG we print the measured
makespan, the critical-path lower bound max(longest path, total work / N), what level-by-
level execution (waves: each group waits for the whole previous one) would take, and
refarch's own overhead per unit (a run whose units take no time at all). Figures only;
nothing is asserted.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from refarch.engines import EngineResult, UnitJob
from refarch.exec.process import ProcessResult
from refarch.models import Plan, PlannedUnit, Repo, Unit
from refarch.runner.run import RunOptions, run
from refarch.runner.scheduler import plan_waits
from refarch.runner.unit import UnitAccess
from refarch.settings import Settings

Spec = dict[str, tuple[str, int, list[str], float]]  # path -> (account, tier, deps, seconds)


class SleepingEngine:
    """The Engine protocol, sleeping each unit's duration instead of running a tool."""

    name = "sleep"
    resolves_dependencies = True

    def __init__(self, durations: Mapping[str, float]) -> None:
        self.durations = durations

    def execute(self, job: UnitJob) -> EngineResult:
        time.sleep(self.durations[job.unit.path])
        return EngineResult(ProcessResult(("sleep",), "/", 0, "", "", 0.0), None)

    def read_outputs(self, job: UnitJob) -> Mapping[str, Any]:
        return {}


class NoCredentials:
    def for_unit(self, unit: Unit) -> UnitAccess:
        return UnitAccess({}, {"Account": unit.account})


def make_plan(spec: Spec, root: Path) -> Plan:
    units = {
        p: Unit(
            path=p, account=a, account_id=None, region="us-east-1", tier=t, dependencies=tuple(d), digest=p
        )
        for p, (a, t, d, _) in spec.items()
    }
    order = _topological(spec)
    tiers = tuple(tuple(p for p in order if spec[p][1] == t) for t in sorted({s[1] for s in spec.values()}))
    planned = {p: PlannedUnit(p, spec[p][0], spec[p][1], 0, tuple(spec[p][2])) for p in order}
    repo = Repo(root=root, units=units, accounts=(), settings=Settings())
    return Plan(repo=repo, action="apply", units=planned, groups=(tuple(order),), tiers=tiers)


def _topological(spec: Spec) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()
    for tier in sorted({s[1] for s in spec.values()}):
        pending = [p for p in spec if spec[p][1] == tier]
        while pending:
            for path in list(pending):
                if all(d in seen for d in spec[path][2]):
                    order.append(path)
                    seen.add(path)
                    pending.remove(path)
    return order


def chain(n: int, seconds: float) -> Spec:
    return {f"c{i:03d}": ("dev", 1, [f"c{i - 1:03d}"] if i else [], seconds) for i in range(n)}


def fan_out(n: int, seconds: float) -> Spec:
    spec: Spec = {"root": ("dev", 1, [], seconds)}
    spec.update({f"leaf{i:03d}": ("dev", 1, ["root"], seconds) for i in range(n)})
    return spec


def refarch_300(rng: random.Random, scale: float) -> Spec:
    """5 accounts in 3 tiers, 300 units: per account and region a vpc, then data stores that
    need it, then services that need both, with uneven durations."""
    spec: Spec = {}

    def add(path: str, account: str, tier: int, deps: list[str], low: float, high: float) -> None:
        spec[path] = (account, tier, deps, rng.uniform(low, high) * scale)

    layout = [
        ("security", 1, 1, 20),
        ("shared", 2, 1, 40),
        ("dev", 3, 2, 40),
        ("stage", 3, 2, 40),
        ("prod", 3, 2, 40),
    ]
    for account, tier, regions, per_region in layout:
        for r in range(regions):
            base = f"{account}/r{r}"
            add(f"{base}/vpc", account, tier, [], 2, 4)
            stores = [f"{base}/db{i}" for i in range(per_region // 5)]
            for store in stores:
                add(store, account, tier, [f"{base}/vpc"], 3, 8)
            for i in range(per_region - 1 - len(stores)):
                deps = [f"{base}/vpc", rng.choice(stores)]
                add(f"{base}/svc{i:02d}", account, tier, deps, 0.5, 3)
    return spec


def lower_bound(plan: Plan, durations: Mapping[str, float], n: int) -> tuple[float, float]:
    waits = plan_waits(plan)
    finish: dict[str, float] = {}
    for path in plan.units:
        finish[path] = durations[path] + max((finish[w] for w in waits[path]), default=0.0)
    longest = max(finish.values())
    return max(longest, sum(durations.values()) / n), longest


def tier_bound(plan: Plan, durations: Mapping[str, float], n: int) -> float:
    """A lower bound that honours the tier rule: no unit of tier k+1 starts before tier k is
    done, so the makespan is at least the sum over tiers of max(longest path inside the tier,
    the tier's work / N)."""
    total = 0.0
    for tier in plan.tiers:
        inside = set(tier)
        finish: dict[str, float] = {}
        for path in plan.units:
            if path in inside:
                deps = [w for w in plan.units[path].waits_for if w in inside]
                finish[path] = durations[path] + max((finish[w] for w in deps), default=0.0)
        total += max(*finish.values(), sum(durations[p] for p in tier) / n)
    return total


def level_by_level(plan: Plan, durations: Mapping[str, float], n: int) -> float:
    """Waves: the units whose waits are all in earlier waves, each wave list-scheduled on
    n workers (longest first) and waited for as a whole."""
    waits = plan_waits(plan)
    level: dict[str, int] = {}
    for path in plan.units:
        level[path] = 1 + max((level[w] for w in waits[path]), default=-1)
    total = 0.0
    for wave in range(max(level.values()) + 1):
        workers = [0.0] * n
        for seconds in sorted((durations[p] for p in level if level[p] == wave), reverse=True):
            workers[workers.index(min(workers))] += seconds
        total += max(workers)
    return total


def simulated(plan: Plan, durations: Mapping[str, float], n: int, *, weighted: bool = False) -> float:
    """The same ready-queue policy (longest chain of dependents first; by duration when
    `weighted`, as with an earlier run's history) with zero overhead: what the policy itself
    achieves under the tier rule, before threads and I/O."""
    waits = plan_waits(plan)
    dependents: dict[str, list[str]] = {p: [] for p in plan.units}
    for path, wanted in waits.items():
        for w in wanted:
            dependents[w].append(path)
    chain: dict[str, float] = {}
    for path in reversed(list(plan.units)):
        weight = durations[path] if weighted else 1.0
        chain[path] = weight + max((chain[d] for d in dependents[path]), default=0.0)
    pending = {p: len(w) for p, w in waits.items()}
    ready = [p for p in plan.units if not pending[p]]
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        ready.sort(key=lambda p: -chain[p])
        while ready and len(running) < n:
            path = ready.pop(0)
            running.append((now + durations[path], path))
        running.sort()
        now, done = running.pop(0)
        for d in dependents[done]:
            pending[d] -= 1
            if not pending[d]:
                ready.append(d)
    return now


def measure(name: str, spec: Spec, n: int) -> None:
    durations = {p: s[3] for p, s in spec.items()}
    makespans = []
    with tempfile.TemporaryDirectory() as folder:
        plan = make_plan(spec, Path(folder))
        for _ in range(2):  # the second run is ordered by the first run's durations
            started = time.perf_counter()
            report = run(
                plan,
                "apply",
                engine=SleepingEngine(durations),
                credentials=NoCredentials(),
                options=RunOptions(parallelism=n),
                base_env={},
                sleep=lambda _s: None,
            )
            makespans.append(time.perf_counter() - started)
            assert report.ok
    bound, longest = lower_bound(plan, durations, n)
    waves = level_by_level(plan, durations, n)
    tiers = tier_bound(plan, durations, n)
    first, second = makespans
    print(
        f"{name:<20} units {len(spec):>3} N {n:>2}  bound {bound:6.3f}s (path {longest:.3f}, "
        f"work/N {sum(durations.values()) / n:.3f})  tier-aware bound {tiers:6.3f}s  "
        f"waves {waves:6.3f}s x{waves / tiers:5.3f}\n"
        f"{'':<20} first run  {first:6.3f}s x{first / bound:5.3f} bound x{first / tiers:5.3f} "
        f"tier-aware (policy-sim x{simulated(plan, durations, n) / tiers:5.3f})\n"
        f"{'':<20} second run {second:6.3f}s x{second / bound:5.3f} bound x{second / tiers:5.3f} "
        f"tier-aware (policy-sim x{simulated(plan, durations, n, weighted=True) / tiers:5.3f})"
    )


def overhead(spec: Spec, n: int) -> None:
    zero = dict.fromkeys(spec, 0.0)
    with tempfile.TemporaryDirectory() as folder:
        plan = make_plan({p: (a, t, d, 0.0) for p, (a, t, d, _) in spec.items()}, Path(folder))
        started = time.perf_counter()
        run(
            plan,
            "apply",
            engine=SleepingEngine(zero),
            credentials=NoCredentials(),
            options=RunOptions(parallelism=n),
            base_env={},
            sleep=lambda _s: None,
        )
        elapsed = time.perf_counter() - started
    print(
        f"overhead per unit (N={n}, {len(spec)} zero-time units, ledger + logs included): "
        f"{elapsed / len(spec) * 1000:.2f} ms"
    )


def main() -> None:
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 0.02  # seconds per duration unit
    rng = random.Random(7)
    print("scheduler: refarch.run() with a sleeping engine (seconds are wall time)")
    measure("chain of 30", chain(30, 2 * scale), 4)
    measure("fan-out 1 -> 120", fan_out(120, 2 * scale), 8)
    big = refarch_300(rng, scale)
    for n in (4, 8, 16):
        measure("refarch 5 accounts", big, n)
    overhead(big, 1)
    overhead(big, 8)


if __name__ == "__main__":
    main()
