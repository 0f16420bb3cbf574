"""`refarch audit export DIR --out FILE`: every event of every run as JSON lines (a nightly backup)."""

from __future__ import annotations

from pathlib import Path

import click

from refarch.jobs.audit import AuditExportRequest, audit_export


@click.group("audit")
def command() -> None:
    """The audit trail of a live repo's runs."""


@command.command("export")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The JSON lines file."
)
@click.option("--since", metavar="WHEN", help="Only runs since then: 2026-11-30, 12h, 7d.")
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack, VPC endpoint).")
@click.option("--profile", help="AWS profile of the identity that assumes each account's role.")
def export(
    directory: str, out: Path, since: str | None, endpoint_url: str | None, profile: str | None
) -> None:
    """Write every event of every run of DIRECTORY (each with its run_id) to FILE as JSON
    lines, atomically and readable by you alone; schedulable as the nightly backup."""
    request = AuditExportRequest(directory, out, since=since, endpoint_url=endpoint_url, profile=profile)
    result = audit_export(request)
    click.echo(f"{result.count} event(s) written to {result.out}", err=True)
