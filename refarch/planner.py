"""Repo + filters -> Plan: which units run, in which order, and why. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence

from refarch import graph as dag
from refarch.errors import UsageError
from refarch.models import Plan, PlannedUnit, Repo

ACTIONS = ("apply", "plan", "destroy", "output", "validate", "init")


def plan(
    repo: Repo,
    action: str = "apply",
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    ignore_dependencies: bool = False,
    queue_include_external: bool = False,
    with_dependencies: bool = False,
) -> Plan:
    """Order the repo's units for `action`.

    A selection is what runs: the units of the loaded folder (external units, reached only as
    dependencies from outside it, are not), narrowed by the `include` globs over unit paths.
    Dependencies outside the selection are read for their outputs and listed as assumed
    (already applied), never run, unless `with_dependencies` or `queue_include_external`
    (Terragrunt's flag) pulls them in; `ignore_dependencies` (Terragrunt's
    `--queue-strict-include`) is the default and only refuses that. An `include` that matches
    nothing selects nothing, with a warning (as Terragrunt does). Account tiers come first
    (every unit of tier k before any of tier k+1), dependencies inside them. Units with `skip`
    or an `exclude` block for this action are listed as skipped, with the reason; so are, for
    destroy, units with `prevent_destroy` and everything they depend on (Terragrunt's `run
    --all destroy`). Destroy is the exact reverse order.
    """
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}", hint=f"use one of {', '.join(ACTIONS)}")
    graph = dag.check(repo)
    reverse = action == "destroy"
    external = {p for p, u in repo.units.items() if u.external}
    pull = (with_dependencies or queue_include_external) and not ignore_dependencies
    queueable = set(repo.units) if queue_include_external else set(repo.units) - external

    selected = {p for p in queueable if not include or dag.matches(p, include)}
    warnings: list[str] = []
    if include and not selected:
        warnings.append(f"--include {' '.join(include)} matches no unit: nothing to {action}")
    elif include:  # each pattern that matches nothing is a typo to point at
        for pattern in include:
            if not any(dag.matches(p, [pattern]) for p in repo.units):
                warnings.append(f"--include {pattern} matches no unit")
    for pattern in exclude:  # a typo in an exclude would run what it meant to leave out
        if not any(dag.matches(p, [pattern]) for p in repo.units):
            warnings.append(f"--exclude {pattern} matches no unit")
    assumed: set[str] = set()
    needed = dag.ancestors(graph, selected) - selected if pull and not reverse else set()
    selected |= needed & (set(repo.units) if with_dependencies else queueable)
    reasons: dict[str, str] = {}
    for path in sorted(selected):
        unit = repo.units[path]
        if exclude and dag.matches(path, exclude):
            reasons[path] = "excluded by --exclude"
        elif repo.excludes and dag.matches(path, repo.excludes):
            reasons[path] = "listed in the excludes file"
        elif unit.skip:
            reasons[path] = "skip = true"
        elif unit.skipped_for(action):
            reasons[path] = f"exclude block for {action}"
        elif reverse and unit.prevent_destroy:
            reasons[path] = "prevent_destroy = true"
    for path in sorted(reasons):
        block = repo.units[path].exclude
        if block is not None and block.exclude_dependencies and block.applies_to(action):
            for dep in sorted(dag.ancestors(graph, [path]) & selected):
                reasons.setdefault(dep, f"a dependency of {path} (exclude_dependencies)")
        if reverse and repo.units[path].prevent_destroy and reasons[path] == "prevent_destroy = true":
            for dep in sorted(dag.ancestors(graph, [path]) & selected):
                reasons.setdefault(dep, f"a dependency of {path}, which has prevent_destroy = true")
    skipped = set(reasons)
    run = selected - skipped
    outside = {d for p in run for d in repo.units[p].dependencies if d not in run}
    assumed |= outside - skipped - external
    external_deps = outside & external - run

    tiers: dict[int, list[str]] = {}
    for path in sorted(run):
        tiers.setdefault(repo.units[path].tier, []).append(path)
    ordered_tiers = tuple(tuple(tiers[t]) for t in sorted(tiers))
    groups = tuple(tuple(g) for g in dag.tier_generations(graph, ordered_tiers))
    if reverse:  # destroy is the exact reverse of apply
        ordered_tiers, groups = ordered_tiers[::-1], groups[::-1]

    units: dict[str, PlannedUnit] = {}
    for index, group in enumerate(groups):
        for path in group:
            unit = repo.units[path]
            if reverse:
                waits = tuple(sorted(d for d in graph.successors(path) if d in run))
            else:
                waits = tuple(d for d in unit.dependencies if d in run)
            units[path] = PlannedUnit(
                path=path,
                account=unit.account,
                tier=unit.tier,
                group=index,
                waits_for=waits,
                assumed=tuple(d for d in unit.dependencies if d in assumed | external_deps)
                if not reverse
                else (),
            )
    return Plan(
        repo=repo,
        action=action,
        units=units,
        groups=groups,
        tiers=ordered_tiers,
        skipped=tuple(sorted(skipped)),
        assumed=tuple(sorted(assumed)),
        external=tuple(sorted(external_deps)),
        reasons=reasons,
        warnings=tuple(warnings),
    )


def dependents_outside(plan: Plan) -> dict[str, tuple[str, ...]]:
    """Units left out of `plan` that depend, directly or through others, on a unit it runs:
    what a partial destroy would leave broken. {outside unit: the planned units it needs}."""
    planned = set(plan.units)
    found: dict[str, tuple[str, ...]] = {}
    for path, unit in plan.repo.units.items():
        if path in planned or unit.skip:
            continue
        needs: set[str] = set()
        seen, stack = {path}, list(unit.dependencies)
        while stack:
            current = stack.pop()
            if current in seen or current not in plan.repo.units:
                continue
            seen.add(current)
            if current in planned:
                needs.add(current)
            stack.extend(plan.repo.units[current].dependencies)
        if needs:
            found[path] = tuple(sorted(needs))
    return found
