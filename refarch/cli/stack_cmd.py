"""`refarch stack generate|run|output|clean DIR`: Terragrunt's stack commands."""

from __future__ import annotations

import json
from typing import Any

import click

from refarch.cli.run_cmd import execute, run_options
from refarch.cli.stack_generate import describe, warn_orphans
from refarch.config.stacks import STACK_FILE
from refarch.hcl_text import hcl_value
from refarch.jobs.deploy import DeployRequest, DeployResult
from refarch.jobs.stack_verbs import (
    StackOutputRequest,
    StackOutputResult,
    StackRequest,
    stack_clean,
    stack_generate,
    stack_output,
)

STACK_ACTIONS = {"apply": "apply", "plan": "plan", "destroy": "destroy", "output": "output"}


@click.group("stack")
def command() -> None:
    """Terragrunt stacks: terragrunt.stack.hcl files and their generated units."""


@command.command("generate")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def generate(directory: str) -> None:
    """Generate every terragrunt.stack.hcl below DIRECTORY into its .terragrunt-stack folder
    (nested stacks too), as `terragrunt stack generate` does. Each stack file is rendered
    whole before it replaces the old folder; when nothing changed, nothing is written."""
    result = stack_generate(StackRequest(directory))
    warn_orphans(result)
    if not result.stacks:
        click.echo(f"no {STACK_FILE} below {directory}: nothing to generate")
        return
    for stack in result.stacks:
        describe(stack, err=False)
        for unit in stack.units:
            click.echo(f"  {unit}")


@command.command("clean")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def clean(directory: str) -> None:
    """Delete every .terragrunt-stack folder below DIRECTORY (what `stack generate` made), as
    `terragrunt stack clean` does. State kept in a unit's folder goes with it: keep state in
    a backend."""
    for folder in stack_clean(StackRequest(directory)).deleted:
        click.echo(f"Deleting stack directory: {folder}", err=True)


@command.command("run")
@click.argument("action", type=click.Choice(sorted(STACK_ACTIONS)))
@run_options
def run(action: str, directory: str, **opts: Any) -> None:
    """Generate the stacks of DIRECTORY (unless --no-stack-generate), then run ACTION on
    their units, as `terragrunt stack run ACTION` does (`refarch apply DIRECTORY` and the
    other run verbs do the same)."""
    execute(STACK_ACTIONS[action], directory, **opts)


@command.command("output")
@run_options
@click.argument("key", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["default", "json", "raw"]),
    default="default",
    show_default=True,
    help="default: HCL; json; raw: one value as plain text (needs KEY).",
)
def output(directory: str, key: str | None, fmt: str, **opts: Any) -> None:
    """The outputs of the stack in DIRECTORY by unit name (a nested stack's as `stack.unit`),
    as `terragrunt stack output [KEY]` aggregates them; KEY is `unit` or `unit.output`."""

    def job(request: DeployRequest, **callbacks: Any) -> StackOutputResult:
        return stack_output(StackOutputRequest(request, key), **callbacks)

    def present(result: DeployResult) -> None:
        assert isinstance(result, StackOutputResult)
        shown = result.selected()
        if fmt == "json":
            click.echo(json.dumps(shown, indent=2))
        elif fmt == "raw":
            if key is None or isinstance(shown[key], dict | list):
                raise click.UsageError("--format raw prints one value: name it, e.g. app.id")
            click.echo(shown[key] if isinstance(shown[key], str) else json.dumps(shown[key]))
        else:
            for name, value in shown.items():
                click.echo(f"{name} = {hcl_value(value)}")

    execute("output", directory, present=present, job=job, **opts)
