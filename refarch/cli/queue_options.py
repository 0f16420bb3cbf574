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


class CommaList(click.ParamType[str]):
    """A repeatable value whose environment variable holds several, comma-separated, as
    Terragrunt's TG_QUEUE_INCLUDE_DIR / TG_QUEUE_EXCLUDE_DIR do."""

    name = "pattern"
    envvar_list_splitter = ","

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not text:  # `--include "$VAR"` with an empty VAR would otherwise select everything
            self.fail("an empty pattern: name the units (is a CI variable empty?)", param, ctx)
        return text


def include_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--include (alias --queue-include-dir, env TG_QUEUE_INCLUDE_DIR)."""
    return click.option(
        "--include",
        "--queue-include-dir",
        "include",
        multiple=True,
        type=CommaList(),
        envvar="TG_QUEUE_INCLUDE_DIR",
        show_envvar=True,
        metavar="PATTERN",
        help=help_text,
    )


def exclude_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--exclude (alias --queue-exclude-dir, env TG_QUEUE_EXCLUDE_DIR)."""
    return click.option(
        "--exclude",
        "--queue-exclude-dir",
        "exclude",
        multiple=True,
        type=CommaList(),
        envvar="TG_QUEUE_EXCLUDE_DIR",
        show_envvar=True,
        metavar="PATTERN",
        help=help_text,
    )


def ignore_dependencies_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--ignore-dependencies (alias --queue-strict-include, env TG_QUEUE_STRICT_INCLUDE)."""
    return click.option(
        "--ignore-dependencies",
        "--queue-strict-include",
        "ignore_dependencies",
        is_flag=True,
        envvar="TG_QUEUE_STRICT_INCLUDE",
        show_envvar=True,
        help=help_text,
    )


with_dependencies_option = click.option(
    "--with-dependencies",
    is_flag=True,
    help="Also run the dependencies of the selected units that are outside the selection "
    "(by default they are read for their outputs, never run).",
)

queue_external = click.option(
    "--queue-include-external/--queue-exclude-external",
    "queue_include_external",
    default=None,
    envvar="TG_QUEUE_INCLUDE_EXTERNAL",
    show_envvar=True,
    help="Also run dependencies outside DIR (external units) and outside --include; by default "
    "they are only read for their outputs and shown as external.",
)


tf_path_option = click.option(
    "--tf-path",
    envvar="TG_TF_PATH",
    show_envvar=True,
    help="The Terraform binary (before [engine] terraform_binary; TG_TF_PATH comes after it).",
)
profile_option = click.option(
    "--profile", help="AWS profile of the identity that assumes each account's role (over refarch.toml)."
)


def typed_tf_path(tf_path: str | None) -> str | None:
    """`--tf-path` when typed on the command line (not from TG_TF_PATH), else None: a typed one
    beats `[engine] terraform_binary` (settings.with_terraform_binary); its variable TG_TF_PATH
    comes after it (refarch.engines.terraform.resolve_terraform reads that)."""
    context = click.get_current_context(silent=True)
    typed = (
        context is not None
        and context.get_parameter_source("tf_path") == click.core.ParameterSource.COMMANDLINE
    )
    return tf_path if tf_path and typed else None


def repo_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--no-hidden, --queue-excludes-file, --no-stack-generate and --feature: how the live
    repo is read."""
    options = [
        click.option(
            "--no-hidden",
            is_flag=True,
            envvar="TG_NO_HIDDEN",
            show_envvar=True,
            help="Do not look for units in hidden folders (.name/).",
        ),
        click.option(
            "--queue-excludes-file",
            type=click.Path(dir_okay=False),
            envvar="TG_QUEUE_EXCLUDES_FILE",
            show_envvar=True,
            help="A file listing folders to leave out, one a line [default: DIR/.terragrunt-excludes].",
        ),
        click.option(
            "--no-stack-generate",
            is_flag=True,
            envvar="TG_NO_STACK_GENERATE",
            show_envvar=True,
            help="Do not generate the terragrunt.stack.hcl files first (use what .terragrunt-stack holds).",
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
