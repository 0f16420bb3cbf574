"""Generating stacks before a command reads the repo, and saying what was generated.

`generate_first` is what graph, plan and the run verbs do before they load the repo, as
`terragrunt run --all` generates stacks first; `refarch stack generate` (stack_cmd) says more.
"""

from __future__ import annotations

import os

import click

from refarch.config.stacks import STACK_FILE, GeneratedStack, StacksResult
from refarch.jobs.stacks import generate_stacks


def generate_first(directory: str, *, skip: bool = False) -> None:
    """Generate the stacks below `directory` before it is loaded (skipped with
    --no-stack-generate / TG_NO_STACK_GENERATE, as with Terragrunt). Notes go to stderr, so
    that JSON on stdout stays clean; an unchanged stack says nothing."""
    if skip or os.environ.get("TG_NO_STACK_GENERATE", "").lower() in ("1", "true"):
        return
    result = generate_stacks(directory)
    warn_orphans(result)
    for stack in result.stacks:
        if stack.changed:
            describe(stack, err=True)


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
