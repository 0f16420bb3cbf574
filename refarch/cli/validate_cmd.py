"""`refarch validate DIR`: units' inputs and dependency outputs against their local modules."""

from __future__ import annotations

import json

import click

from refarch.cli.notices import show_notice
from refarch.jobs.inspect_repo import ValidateRequest, validate_live


@click.command("validate")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the mismatches as JSON.")
def command(directory: str, as_json: bool) -> None:
    """Check every unit whose module is local: inputs against the module's variables (unknown
    names, required ones missing) and dependency.X.outputs.Y against X's module outputs.
    Exits 2 when anything does not match."""
    result = validate_live(ValidateRequest(directory), on_event=show_notice)
    report = result.report
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for mismatch in report.mismatches:
            click.secho(str(mismatch), fg="red", err=True)
        summary = (
            f"{len(report.checked)} unit(s) checked against {len(report.modules)} "
            f"module(s), {len(report.mismatches)} mismatch(es)"
        )
        if report.remote:
            summary += f"; {len(report.remote)} with a remote source not checked"
        click.secho(summary, fg="green" if report.ok else "red", bold=True)
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)
