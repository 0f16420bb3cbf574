import threading
import time
from pathlib import Path

from refarch.exec.process import Interrupt
from refarch.models import Plan, PlannedUnit, Repo, Status, Unit
from refarch.runner.scheduler import Outcome, plan_waits, schedule
from refarch.settings import Settings


def make_plan(spec, *, action="apply", root=Path("/nonexistent"), digests=None):
    """A Plan from {path: (account, tier, [deps])}, as the lead's plan() would build it."""
    units = {
        path: Unit(
            path=path,
            account=account,
            account_id=None,
            region="us-east-1",
            tier=tier,
            dependencies=tuple(deps),
            digest=(digests or {}).get(path, f"d-{path}"),
        )
        for path, (account, tier, deps) in spec.items()
    }
    repo = Repo(root=root, units=units, accounts=(), settings=Settings())
    reverse = action == "destroy"
    waits = {p: tuple(u.dependencies) for p, u in units.items()}
    if reverse:
        waits = {p: tuple(q for q, u in units.items() if p in u.dependencies) for p in units}
    tier_numbers = sorted({u.tier for u in units.values()}, reverse=reverse)
    tiers = tuple(tuple(p for p in units if units[p].tier == t) for t in tier_numbers)
    planned = {p: PlannedUnit(p, units[p].account, units[p].tier, 0, waits[p]) for p in units}
    return Plan(repo=repo, action=action, units=planned, groups=(tuple(units),), tiers=tiers)


def recording_task(results=None, delay=0.0):
    started, lock = [], threading.Lock()

    def task(unit):
        with lock:
            started.append(unit)
        time.sleep(delay)
        return Outcome((results or {}).get(unit, Status.SUCCEEDED))

    return task, started


def test_every_unit_runs_after_what_it_waits_for():
    plan = make_plan(
        {
            "sec/iam": ("security", 1, []),
            "dev/vpc": ("dev", 3, []),
            "dev/db": ("dev", 3, ["dev/vpc"]),
            "dev/app": ("dev", 3, ["dev/db", "dev/vpc"]),
            "ops/vpc": ("shared", 2, []),
        }
    )
    task, started = recording_task()
    outcomes = schedule(list(plan.units), plan_waits(plan), task, parallelism=3)
    assert all(o.status == Status.SUCCEEDED for o in outcomes.values())
    expected = ["sec/iam", "ops/vpc", "dev/vpc", "dev/db", "dev/app"]
    assert sorted(expected, key=started.index) == expected


def test_a_ready_unit_does_not_wait_for_an_unrelated_slow_one():
    # No waves: b2 depends only on b1, so it must start while the slow a1 still runs.
    plan = make_plan({"a1": ("x", 1, []), "b1": ("x", 1, []), "b2": ("x", 1, ["b1"])})
    a1_running, b2_started = threading.Event(), threading.Event()

    def task(unit):
        if unit == "a1":
            a1_running.set()
            assert b2_started.wait(5), "b2 waited for a1: the scheduler runs in waves"
        if unit == "b2":
            b2_started.set()
        return Outcome(Status.SUCCEEDED)

    outcomes = schedule(list(plan.units), plan_waits(plan), task, parallelism=2)
    assert {o.status for o in outcomes.values()} == {Status.SUCCEEDED}


def test_never_more_than_parallelism_units_at_once():
    plan = make_plan({f"u{i}": ("x", 1, []) for i in range(12)})
    current, peak, lock = [0], [0], threading.Lock()

    def task(unit):
        with lock:
            current[0] += 1
            peak[0] = max(peak[0], current[0])
        time.sleep(0.01)
        with lock:
            current[0] -= 1
        return Outcome(Status.SUCCEEDED)

    schedule(list(plan.units), plan_waits(plan), task, parallelism=3)
    assert peak[0] == 3


def test_failure_stops_dependents_and_names_what_they_wait_for():
    plan = make_plan(
        {
            "vpc": ("dev", 1, []),
            "db": ("dev", 1, ["vpc"]),
            "app": ("dev", 1, ["db"]),
            "other": ("dev", 1, []),
            "other2": ("dev", 1, ["other"]),
        }
    )
    task, started = recording_task({"vpc": Status.FAILED})
    outcomes = schedule(list(plan.units), plan_waits(plan), task, parallelism=2)
    assert outcomes["vpc"].status == Status.FAILED
    assert outcomes["db"] == Outcome(Status.NOT_RUN, "waits for vpc, which failed", blocked_by="vpc")
    assert outcomes["app"].status == Status.NOT_RUN and outcomes["app"].blocked_by == "db"
    assert "vpc failed" in outcomes["app"].message
    assert outcomes["other2"].status == Status.SUCCEEDED  # the other branch runs to the end
    assert "db" not in started and "app" not in started


def test_a_failure_in_an_earlier_tier_stops_later_tiers():
    plan = make_plan({"sec/iam": ("security", 1, []), "dev/vpc": ("dev", 2, [])})
    task, _ = recording_task({"sec/iam": Status.FAILED})
    outcomes = schedule(list(plan.units), plan_waits(plan), task)
    assert outcomes["dev/vpc"].blocked_by == "sec/iam"


def test_fail_fast_starts_nothing_after_the_first_failure():
    plan = make_plan({"a": ("x", 1, []), "b": ("x", 1, []), "c": ("x", 1, [])})
    task, started = recording_task({"a": Status.FAILED})
    outcomes = schedule(list(plan.units), plan_waits(plan), task, parallelism=1, fail_fast=True)
    assert started == ["a"]
    assert outcomes["b"].status == Status.NOT_RUN and "--fail-fast" in outcomes["b"].message


def test_interrupt_lets_running_units_finish_and_starts_nothing_new():
    plan = make_plan({"a": ("x", 1, []), "b": ("x", 1, ["a"]), "c": ("x", 1, [])})
    interrupt = Interrupt()

    def task(unit):
        interrupt.request()
        return Outcome(Status.INTERRUPTED)

    outcomes = schedule(list(plan.units), plan_waits(plan), task, parallelism=1, interrupt=interrupt)
    assert [o.status for o in outcomes.values()].count(Status.INTERRUPTED) == 1
    assert all(o.status in (Status.INTERRUPTED, Status.NOT_RUN) for o in outcomes.values())


def test_critical_path_starts_first():
    # With one slot, the unit with the long chain behind it goes before the lone leaf.
    plan = make_plan(
        {"leaf": ("x", 1, []), "c1": ("x", 1, []), "c2": ("x", 1, ["c1"]), "c3": ("x", 1, ["c2"])}
    )
    task, started = recording_task()
    schedule(list(plan.units), plan_waits(plan), task, parallelism=1)
    assert started[0] == "c1"


def test_known_durations_start_the_longest_path_of_work_first():
    # By count, c1 (two units behind it) would go first; by the durations of an earlier run,
    # the lone slow unit is the longer path and starts first.
    plan = make_plan({"slow": ("x", 1, []), "c1": ("x", 1, []), "c2": ("x", 1, ["c1"])})
    task, started = recording_task()
    schedule(
        list(plan.units),
        plan_waits(plan),
        task,
        parallelism=1,
        durations={"slow": 60.0, "c1": 5.0, "c2": 5.0},
    )
    assert started[0] == "slow"
    task, started = recording_task()
    schedule(list(plan.units), plan_waits(plan), task, parallelism=1)
    assert started[0] == "c1"


def test_destroy_walks_the_reverse_dag():
    plan = make_plan(
        {"vpc": ("dev", 1, []), "db": ("dev", 1, ["vpc"]), "app": ("dev", 1, ["db"])}, action="destroy"
    )
    task, started = recording_task()
    schedule(list(plan.units), plan_waits(plan), task)
    assert started == ["app", "db", "vpc"]


def test_hooks_see_every_start_and_finish():
    plan = make_plan({"a": ("x", 1, []), "b": ("x", 1, ["a"])})
    task, _ = recording_task({"a": Status.FAILED})
    starts, finishes = [], []
    schedule(
        list(plan.units),
        plan_waits(plan),
        task,
        on_start=starts.append,
        on_finish=lambda u, o: finishes.append((u, o.status)),
    )
    assert starts == ["a"] and finishes == [("a", Status.FAILED), ("b", Status.NOT_RUN)]


def test_a_gate_that_refuses_stops_every_later_start_and_names_why():
    plan = make_plan({"a": ("x", 1, []), "b": ("x", 2, ["a"]), "c": ("x", 3, ["b"])})
    task, started = recording_task()
    asked = []

    def gate(unit):
        asked.append(unit)
        return "this run lost the lock on account x" if unit == "b" else None

    outcomes = schedule(list(plan.units), plan_waits(plan), task, parallelism=1, gate=gate)
    assert started == ["a"] and asked == ["a", "b"]
    assert outcomes["b"].status == outcomes["c"].status == Status.NOT_RUN
    assert outcomes["b"].message == "not started: this run lost the lock on account x"
