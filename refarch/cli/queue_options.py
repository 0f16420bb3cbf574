"""Options that choose what is read and queued, shared by graph, plan and the run verbs.

Their names and environment variables are Terragrunt's, so a Terragrunt user's flags and CI
variables work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from refarch.errors import UsageError

queue_external = click.option(
    "--queue-include-external/--queue-exclude-external",
    "queue_include_external",
    default=None,
    envvar="TG_QUEUE_INCLUDE_EXTERNAL",
    help="Also run dependencies outside DIR (external units); by default they are only read "
    "for their outputs and shown as external.",
)


def repo_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--no-hidden, --queue-excludes-file and --feature: how the live repo is read."""
    options = [
        click.option(
            "--no-hidden",
            is_flag=True,
            envvar="TG_NO_HIDDEN",
            help="Do not look for units in hidden folders (.name/).",
        ),
        click.option(
            "--queue-excludes-file",
            type=click.Path(dir_okay=False),
            envvar="TG_QUEUE_EXCLUDES_FILE",
            help="A file listing folders to leave out, one a line [default: DIR/.terragrunt-excludes].",
        ),
        click.option(
            "--feature",
            "features",
            multiple=True,
            metavar="NAME=VALUE",
            help="Set a feature flag (also TG_FEATURE=name=value,name2=value2). Repeatable.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def load_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The options of repo_options as keyword arguments of refarch.load_repo."""
    features: dict[str, str] = {}
    for item in opts["features"]:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(
                f"--feature {item}: expected NAME=VALUE", hint="e.g. --feature enable_logging=true"
            )
        features[name] = value
    excludes = opts["queue_excludes_file"]
    return {
        "hidden": not opts["no_hidden"],
        "excludes_file": Path(excludes).resolve() if excludes else None,
        "features": features,
    }
