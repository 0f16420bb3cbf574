"""`refarch graph DIR`: the units and their dependency edges as JSON, DOT or Mermaid."""

from __future__ import annotations

import json

import click

from refarch import graph
from refarch.cli.stack_cmd import generate_first
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
@click.option("--no-cache", is_flag=True, help="Re-read every file instead of using .refarch/cache.")
def command(directory: str, fmt: str, no_cache: bool) -> None:
    """Print every unit of the live repo DIRECTORY and its dependency edges."""
    generate_first(directory)
    repo = load_repo(directory, cache=not no_cache)
    if fmt == "json":
        click.echo(json.dumps(graph.to_json(repo), indent=2))
    elif fmt == "dot":
        click.echo(graph.to_dot(repo), nl=False)
    else:
        click.echo(graph.to_mermaid(repo), nl=False)
