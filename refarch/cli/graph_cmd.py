"""`refarch graph DIR`: the units and their dependency edges as JSON, DOT or Mermaid."""

from __future__ import annotations

import json
from typing import Any

import click

from refarch import graph
from refarch.changes import subrepo
from refarch.cli import changed, output
from refarch.cli.queue_options import load_options, queue_external, repo_options
from refarch.cli.stack_generate import generate_first
from refarch.repo import load_repo


@click.command("graph")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "dot", "mermaid"]),
    default="json",
    show_default=True,
    help="Output format.",
)
@queue_external
@repo_options
@click.option("--no-cache", is_flag=True, help="Re-read every file instead of using .refarch/cache.")
@changed.option
def command(
    directory: str,
    fmt: str,
    queue_include_external: bool | None,
    no_cache: bool,
    changed_since: str | None,
    **opts: Any,
) -> None:
    """Print every unit of the live repo DIRECTORY and its dependency edges (DOT edges point
    dependent -> dependency, as Terragrunt's). Dependencies outside DIR are marked external;
    --queue-exclude-external leaves them out."""
    generate_first(directory, skip=opts["no_stack_generate"])
    repo = load_repo(directory, cache=not no_cache, touches_aws=False, **load_options(opts))
    output.warn(repo.warnings)
    if queue_include_external is False:
        repo = graph.without_external(repo)
    if changed_since:  # only the changed units and their dependents, edges among them
        _, wanted, _ = changed.narrow(repo, changed_since)
        repo = subrepo(repo, wanted)
    if fmt == "json":
        click.echo(json.dumps(graph.to_json(repo), indent=2))
    elif fmt == "dot":
        click.echo(graph.to_dot(repo), nl=False)
    else:
        click.echo(graph.to_mermaid(repo), nl=False)
