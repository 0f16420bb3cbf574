"""`refarch plan DIR`: the deployment order, group by group, with why each unit is there."""

from __future__ import annotations

import json
from typing import Any

import click

from refarch.cli import changed
from refarch.cli.notices import generate_stacks_flag, show_notice
from refarch.cli.queue_options import (
    exclude_option,
    ignore_dependencies_option,
    include_option,
    load_options,
    queue_external,
    repo_options,
    with_dependencies_option,
)
from refarch.jobs.inspect_repo import PlanRequest, plan_repo
from refarch.models import Plan
from refarch.planner import ACTIONS


@click.command("plan")
@click.argument("directory", type=click.Path(file_okay=False))
@include_option("Only units matching this glob (and what they depend on). Repeatable.")
@exclude_option("Leave out units matching this glob. Repeatable.")
@ignore_dependencies_option("Never run dependencies outside the selection (the default).")
@with_dependencies_option
@click.option(
    "--action",
    type=click.Choice(ACTIONS),
    default="apply",
    show_default=True,
    help="Order for this action (destroy is the reverse order).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@queue_external
@repo_options
@click.option("--no-cache", is_flag=True, help="Re-read every file instead of using .refarch/cache.")
@changed.option
def command(
    directory: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    ignore_dependencies: bool,
    action: str,
    as_json: bool,
    queue_include_external: bool | None,
    with_dependencies: bool,
    no_cache: bool,
    changed_since: str | None,
    **opts: Any,
) -> None:
    """Show the order in which the units of DIRECTORY deploy: account tiers first, then
    dependencies; each group may run in parallel."""
    request = PlanRequest(
        directory,
        action,
        include=include,
        exclude=exclude,
        ignore_dependencies=ignore_dependencies,
        with_dependencies=with_dependencies,
        queue_include_external=bool(queue_include_external),
        changed_since=changed_since,
        generate_stacks=generate_stacks_flag(opts["no_stack_generate"]),
        cache=not no_cache,
        **load_options(opts),
    )
    result = plan_repo(request, on_event=show_notice).plan
    if result is None:
        return
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        render(result)


def render(result: Plan) -> None:
    """The human-readable plan."""
    count = len(result.units)
    click.secho(f"{result.action}: {count} unit(s) in {len(result.groups)} group(s)", bold=True)
    tier = None
    present = sorted({unit.tier for unit in result.units.values()})
    earlier = dict(zip(present[1:], present, strict=False))  # tier -> the tier before it in this plan
    for index, group in enumerate(result.groups, start=1):
        first = result.units[group[0]]
        if first.tier != tier:
            tier = first.tier
            accounts = sorted(
                {result.units[p].account for t in result.tiers for p in t if result.units[p].tier == tier}
            )
            click.secho(f"\ntier {tier}: {', '.join(accounts)}", fg="cyan", bold=True)
        click.echo(f"  group {index}")
        for path in group:
            unit = result.units[path]
            why = f"waits for {', '.join(unit.waits_for)}" if unit.waits_for else "no dependencies"
            if result.action != "destroy" and unit.tier in earlier:
                why += f"; after tier {earlier[unit.tier]}"
            if unit.assumed:
                why += f"; assumes {', '.join(unit.assumed)} already applied"
            click.echo(f"    {path}  ({unit.account})  {why}")
    if result.skipped:
        click.secho("\nskipped:", fg="yellow")
        for path in result.skipped:
            reason = result.reasons.get(path)
            click.echo(f"    {path}  ({reason})" if reason else f"    {path}")
    if result.external:
        click.secho(
            "\nexternal, outside DIR (read for outputs, not run; --queue-include-external):", fg="yellow"
        )
        for path in result.external:
            click.echo(f"    {path}")
    if result.assumed:
        click.secho(
            "\nread, not run (outside the selection, taken as applied; --with-dependencies runs them):",
            fg="yellow",
        )
        for path in result.assumed:
            click.echo(f"    {path}")
