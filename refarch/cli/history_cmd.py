"""`refarch history DIR`: which unit ran when, by whom, with which result (the shared ledger's
audit trail, or this machine's ledgers)."""

from __future__ import annotations

import json

import click
from rich.markup import escape

from refarch.cli import output
from refarch.runner.history import history, open_store, parse_since


@click.command("history")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--unit", metavar="PATH", help="Only this unit (its path in the repo).")
@click.option("--since", metavar="WHEN", help="Only runs since then: 2026-11-30, 2026-11-30T08:00, 12h, 7d.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack, VPC endpoint).")
@click.option("--profile", help="AWS profile of the identity that assumes each account's role.")
def command(
    directory: str,
    unit: str | None,
    since: str | None,
    as_json: bool,
    endpoint_url: str | None,
    profile: str | None,
) -> None:
    """Show every unit's runs of DIRECTORY, oldest first: when, run, action, status, who (CI
    actor or user, base AWS identity), commit, job. Reads the shared ledger when refarch.toml
    says [ledger] backend = "dynamodb", else this machine's .refarch/runs/."""
    rows = history(
        open_store(directory, endpoint_url=endpoint_url, profile=profile), unit=unit, since=parse_since(since)
    )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.to_json(), sort_keys=True))
        return
    table = output.Table(
        ("when", "run", "action", "unit", "account", "status", "time", "who", "commit", "job"),
        title=f"refarch history: {len(rows)} unit run(s)",
        right=("time",),
        no_wrap=("run", "commit"),
    )
    for row in rows:
        table.add_row(
            row.when,
            row.run_id,
            row.action,
            escape(row.unit),
            escape(row.account),
            row.status,
            "" if row.duration is None else f"{row.duration:.1f}s",
            escape(row.actor + (f" ({row.caller})" if row.caller else "")),
            row.commit[:12],
            escape(row.job_url),
        )
    output.Printer().table(table)
