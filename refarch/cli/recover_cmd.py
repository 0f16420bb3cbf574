"""`refarch recover DIR`: push the Terraform state a run moved aside back to its backends."""

from __future__ import annotations

import sys

import click

from refarch.cli.queue_options import profile_option, tf_path_option, typed_tf_path
from refarch.jobs.recover import RecoverRequest, run_recover


@click.command("recover")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--run",
    "run_ref",
    default="last",
    show_default=True,
    metavar="last|RUN_ID",
    help="The run whose state to push.",
)
@click.option("--unit", "units", multiple=True, metavar="PATH", help="Only this unit (repeatable).")
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack, VPC endpoint).")
@profile_option
@tf_path_option
def command(
    directory: str,
    run_ref: str,
    units: tuple[str, ...],
    endpoint_url: str | None,
    profile: str | None,
    tf_path: str | None,
) -> None:
    """Push the state files that a run kept in .refarch/recovery/ (Terraform could not save
    them) back to each unit's backend with `terraform state push`, then unblock the units."""
    request = RecoverRequest(
        directory, run_ref, units, endpoint_url=endpoint_url, profile=profile, tf_path=typed_tf_path(tf_path)
    )
    result = run_recover(request)
    if not result.pushed:
        click.echo(f"nothing to push: run {run_ref} moved no state aside (or it was pushed already)")
        return
    for item in result.pushed:
        verdict = "pushed" if item.ok else "failed"
        click.echo(f"{item.unit}: {verdict} {item.file}")
        if not item.ok:
            click.echo(item.message, err=True)
    sys.exit(result.exit_code)
