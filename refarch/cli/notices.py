"""Rendering the notes jobs send before their result (refarch.jobs.notices), on stderr so
that JSON on stdout stays clean."""

from __future__ import annotations

import os

import click

from refarch.cli import changed, output
from refarch.cli.stack_generate import describe, warn_orphans
from refarch.jobs.notices import ChangesFound, NothingToRun, StacksGenerated, Warned


def show_notice(event: object) -> None:
    """Print `event` if it is one of the shared notes (refarch.jobs.notices.Notice)."""
    if isinstance(event, StacksGenerated):
        warn_orphans(event.result)
        for stack in event.result.stacks:
            if stack.changed:  # an unchanged stack says nothing
                describe(stack, err=True)
    elif isinstance(event, Warned):
        output.warn(event.messages)
    elif isinstance(event, ChangesFound):
        changed.report(event.change)
    elif isinstance(event, NothingToRun):
        click.echo(event.message, err=True)


def generate_stacks_flag(no_stack_generate: bool) -> bool:
    """Whether to generate stacks first: not with --no-stack-generate or TG_NO_STACK_GENERATE,
    as with Terragrunt."""
    skip = os.environ.get("TG_NO_STACK_GENERATE", "").lower() in ("1", "true")
    return not (no_stack_generate or skip)
