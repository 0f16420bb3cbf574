"""`refarch graph DIR`: the units and their dependency edges as JSON, DOT or Mermaid."""

from __future__ import annotations

from typing import Any

import click

from refarch.cli import changed
from refarch.cli.notices import generate_stacks_flag, show_notice
from refarch.cli.queue_options import load_options, queue_external, repo_options
from refarch.jobs.inspect_repo import GRAPH_FORMATS, GraphRequest, repo_graph


@click.command("graph")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(GRAPH_FORMATS),
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
    request = GraphRequest(
        directory,
        format=fmt,
        queue_include_external=queue_include_external,
        changed_since=changed_since,
        generate_stacks=generate_stacks_flag(opts["no_stack_generate"]),
        cache=not no_cache,
        **load_options(opts),
    )
    click.echo(repo_graph(request, on_event=show_notice).text, nl=False)
