"""`refarch dns import DIR`: import existing Route 53 zones into the state of their units."""

from __future__ import annotations

import click

from refarch.cli.queue_options import profile_option, tf_path_option, typed_tf_path
from refarch.jobs.dns import DnsImportRequest, TerraformLine, run_dns_import


@click.group("dns")
def command() -> None:
    """Route 53: bring existing hosted zones under the management of their unit."""


@command.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack).")
@click.option("--quiet", "-q", is_flag=True, help="Do not stream Terraform's output.")
@profile_option
@tf_path_option
def import_command(
    directory: str, endpoint_url: str | None, quiet: bool, profile: str | None, tf_path: str | None
) -> None:
    """Import each existing public hosted zone into the state of the unit that manages it
    (a `route53` unit, or [dns] unit) with `terraform import`, in the unit's own folder and
    backend; skipped when the state already has it. Run it after `refarch bootstrap` (the
    state bucket must exist) and before the first `refarch apply`."""

    def show(event: TerraformLine) -> None:
        if not quiet:
            click.echo(f"  {event.line}")

    request = DnsImportRequest(
        directory, endpoint_url=endpoint_url, profile=profile, tf_path=typed_tf_path(tf_path)
    )
    for line in run_dns_import(request, on_event=show).lines:
        click.echo(line)
