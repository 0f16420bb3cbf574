"""The refarch command: the only click importer and the only code that prints or exits."""

from __future__ import annotations

import importlib
import sys
import traceback
import warnings
from typing import Any

import click

from refarch.errors import RefarchError, RefarchWarning

# Every verb, one line each: name -> (module in refarch/cli/, summary). The module defines
# `command` (a click command or group) or `commands` (a list, when one module serves several
# verbs); it is imported only when its verb runs, so `refarch --help` imports none of them. The
# summary is what `refarch --help` lists: the start of the command's own help (a test checks it).
COMMANDS: dict[str, tuple[str, str]] = {
    "amis": ("amis_cmd", "Build the architecture's AMIs (ECS/EKS node, OpenVPN, bastion) with Packer."),
    "apply": ("run_cmd", "Apply every unit of DIRECTORY: account tiers first"),
    "artifacts": ("artifacts_cmd", "Build the Lambda packages and Docker images the units deploy."),
    "audit": ("audit_cmd", "The audit trail of a live repo's runs."),
    "bootstrap": ("bootstrap_cmd", "Create what DIRECTORY's accounts need before the first apply"),
    "ci": ("ci_cmd", "Emit a GitHub Actions or GitLab CI pipeline for the live repo DIRECTORY"),
    "config": ("config_cmd", "Inspect refarch's settings (refarch.toml, the environment, flags)."),
    "demo": ("demo_cmd", "Deploy the reference architecture on an embedded AWS"),
    "destroy": ("run_cmd", "Destroy every unit of DIRECTORY, in the reverse order."),
    "drift": ("drift_cmd", "Plan every unit of DIRECTORY read-only"),
    "dns": ("dns_cmd", "Route 53: bring existing hosted zones under the management of their unit."),
    "graph": ("graph_cmd", "Print every unit of the live repo DIRECTORY and its dependency edges"),
    "history": ("history_cmd", "Show every unit's runs of DIRECTORY, oldest first"),
    "new": ("new_cmd", "Render a complete infrastructure-live repo into DIRECTORY"),
    "output": ("run_cmd", "Print the outputs of every unit of DIRECTORY as JSON."),
    "plan": ("plan_cmd", "Show the order in which the units of DIRECTORY deploy"),
    "plan-all": ("run_cmd", "Run `terraform plan` on every unit of DIRECTORY"),
    "preflight": ("preflight_cmd", "Check that every AWS resource the units' inputs reference"),
    "recover": ("recover_cmd", "Push the state files that a run kept in .refarch/recovery/"),
    "stack": ("stack_cmd", "Terragrunt stacks: terragrunt.stack.hcl files and their generated units."),
    "validate": ("validate_cmd", "Check every unit whose module is local"),
    "vpn": ("vpn_cmd", "OpenVPN clients: issue a profile, revoke it"),
}


def load_command(name: str) -> click.Command:
    """The click command of verb `name`, importing its module now."""
    module = importlib.import_module(f"refarch.cli.{COMMANDS[name][0]}")
    for command in getattr(module, "commands", [getattr(module, "command", None)]):
        if command is not None and command.name == name:
            return command  # type: ignore[no-any-return]
    raise LookupError(f"{COMMANDS[name][0]} defines no command named {name!r}")


class Refarch(click.Group):
    """Runs a command inside the one error boundary: RefarchError -> message + exit code.

    Its verbs load lazily from COMMANDS: listing them costs no import."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(load_command(cmd_name))
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The verbs and their summaries from COMMANDS, without importing any verb."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        stand_ins = {name: click.Command(name, help=summary) for name, (_, summary) in COMMANDS.items()}
        rows = [
            (name, (stand_ins.get(name) or self.commands[name]).get_short_help_str(limit)) for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
            from refarch.cli import output  # noqa: PLC0415 - rich loads only when a command needs it

            if output.detect().github:  # an annotation on the file, in the pull request
                click.echo(output.annotation_for(exc, ctx.meta.get("refarch.argv", ())))
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:
            if not _is_aws_error(exc):
                raise
            # a call the library did not wrap: still no traceback
            if debug:
                traceback.print_exc()
            click.secho(f"error: AWS: {exc}", fg="red", err=True)
            click.secho("  -> check your credentials and region, or run again with --debug", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.secho("interrupted", fg="yellow", err=True)
            sys.exit(130)


def _is_aws_error(exc: BaseException) -> bool:
    """A botocore error; botocore is imported only by the commands that call AWS."""
    if "botocore" not in sys.modules:
        return False
    from refarch.aws import AWS_EXCEPTIONS  # noqa: PLC0415 - boto3 loads only when AWS is used

    return isinstance(exc, AWS_EXCEPTIONS)


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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="refarch")
