"""Options that choose the queue, shared by graph, plan and the run verbs (Terragrunt's names)."""

from __future__ import annotations

import click

queue_external = click.option(
    "--queue-include-external/--queue-exclude-external",
    "queue_include_external",
    default=None,
    help="Also run dependencies outside DIR (external units); by default they are only read "
    "for their outputs and shown as external.",
)
