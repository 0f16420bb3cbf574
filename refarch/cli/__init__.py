"""The refarch command: the only click importer and the only code that prints or exits."""

from __future__ import annotations

import importlib
import sys
import traceback
import warnings
from typing import Any

import click

from refarch.aws import AWS_EXCEPTIONS
from refarch.cli import output
from refarch.errors import RefarchError, RefarchWarning

# One module per verb, each defining `command` (a click command or group), or `commands`
# (a list) when one module serves several verbs.
VERB_MODULES = [
    "refarch.cli.amis_cmd",
    "refarch.cli.audit_cmd",
    "refarch.cli.bootstrap_cmd",
    "refarch.cli.ci_cmd",
    "refarch.cli.config_cmd",
    "refarch.cli.demo_cmd",
    "refarch.cli.dns_cmd",
    "refarch.cli.graph_cmd",
    "refarch.cli.history_cmd",
    "refarch.cli.new_cmd",
    "refarch.cli.plan_cmd",
    "refarch.cli.recover_cmd",
    "refarch.cli.preflight_cmd",
    "refarch.cli.run_cmd",
    "refarch.cli.stack_cmd",
    "refarch.cli.validate_cmd",
    "refarch.cli.vpn_cmd",
]


class Refarch(click.Group):
    """Runs a command inside the one error boundary: RefarchError -> message + exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["refarch.argv"] = list(args)  # the folders given, to place an annotation's file
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", RefarchWarning)
                warnings.showwarning = _warning_printer(warnings.showwarning)
                return super().invoke(ctx)
        except RefarchError as exc:
            if debug:
                traceback.print_exc()
            if output.detect().github:  # an annotation on the file, in the pull request
                click.echo(output.annotation_for(exc, ctx.meta.get("refarch.argv", ())))
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except AWS_EXCEPTIONS as exc:  # a call the library did not wrap: still no traceback
            if debug:
                traceback.print_exc()
            click.secho(f"error: AWS: {exc}", fg="red", err=True)
            click.secho("  -> check your credentials and region, or run again with --debug", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.secho("interrupted", fg="yellow", err=True)
            sys.exit(130)


def _warning_printer(default: Any) -> Any:
    """The library's RefarchWarnings as `warning:` lines on stderr; others as Python shows them."""

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, RefarchWarning):
            click.secho(f"warning: {message}", fg="yellow", err=True)
        else:
            default(message, category, *args, **kwargs)

    return show


@click.group(cls=Refarch, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="refarch")
def cli(debug: bool) -> None:
    """Deploy a multi-account AWS reference architecture from an infrastructure-live repo."""


for _name in VERB_MODULES:
    _module = importlib.import_module(_name)
    for _command in getattr(_module, "commands", [_module.command]):
        cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="refarch")
