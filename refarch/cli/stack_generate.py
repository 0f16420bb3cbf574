"""Saying what generating the stacks did: `refarch stack generate` (stack_cmd) says it all;
graph, plan, drift and the run verbs, which generate first (refarch.jobs.notices), name the
stacks that changed."""

from __future__ import annotations

import click

from refarch.config.stacks import STACK_FILE, GeneratedStack, StacksResult


def warn_orphans(result: StacksResult) -> None:
    """A .terragrunt-stack left by a deleted stack file still holds units that would run."""
    for orphan in result.orphans:
        click.secho(
            f"warning: {orphan} has no {STACK_FILE} beside it; its units are still read "
            "(delete the folder if the stack is gone)",
            fg="yellow",
            err=True,
        )


def describe(stack: GeneratedStack, *, err: bool) -> None:
    """One line per stack file (and one per state file carried over)."""
    state = "generated" if stack.changed else "unchanged"
    nested = f" and {len(stack.stacks)} stack(s)" if stack.stacks else ""
    click.echo(f"{stack.stack_file}: {state}, {len(stack.units)} unit(s){nested}", err=err)
    for kept in stack.kept:
        click.echo(f"  kept {kept} (from the previous generation)", err=err)
