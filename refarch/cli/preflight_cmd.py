"""`refarch preflight DIR`: every AWS resource the units reference exists where they run."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.markup import escape

from refarch.jobs.preflight import MISSING, NOT_CHECKED, PreflightReport, PreflightRequest, run_preflight

STYLE = {MISSING: "red", NOT_CHECKED: "yellow"}


@click.command("preflight")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--include", multiple=True, metavar="PATTERN", help="Only units matching this glob.")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Leave out units matching this glob.")
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack, a VPC endpoint).")
@click.option("--profile", help="AWS profile of the identity that assumes each account's role.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Also list the references that were found.")
def command(
    directory: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    endpoint_url: str | None,
    profile: str | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Check that every AWS resource the units' inputs reference (key pairs, AMIs, IAM
    principals, certificates, secrets, zones, KMS keys, buckets) exists, in each unit's own
    account and region through its own role. Exit code 2 when something is missing."""
    report = run_preflight(
        PreflightRequest(directory, include, exclude, endpoint_url=endpoint_url, profile=profile)
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        show(report, Console(highlight=False, soft_wrap=True), verbose=verbose)
    sys.exit(report.exit_code)


def show(report: PreflightReport, console: Console, *, verbose: bool = False) -> None:
    """Missing references with their remedy, then those not checked, then a count."""
    for finding in sorted(report.findings, key=lambda f: (f.status != MISSING, f.reference.unit)):
        ref = finding.reference
        if finding.status not in STYLE and not verbose:
            continue
        value = ref.value if ref.value is not None else "(known after apply)"
        where = f"{ref.kind or 'reference'}, {ref.account} {ref.account_id or ''} {ref.region}"
        note = f": {finding.note}" if finding.note else ""
        style = STYLE.get(finding.status, "green")
        console.print(
            f"[{style}]{finding.status:11}[/] {escape(ref.unit)}: {escape(ref.input)} = "
            f"{escape(value)} ({escape(where)}){escape(note)}"
        )
        if finding.remedy:
            console.print(f"            -> {escape(finding.remedy)}")
    counts = {s: len(report.having(s)) for s in ("found", MISSING, NOT_CHECKED)}
    console.print(
        f"preflight: {len(report.units)} unit(s), {counts['found']} reference(s) found, "
        f"{counts[MISSING]} missing, {counts[NOT_CHECKED]} not checked"
    )
