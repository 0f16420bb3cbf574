"""`refarch history DIR`: which unit ran when, by whom, with which result (the shared ledger's
audit trail, or this machine's ledgers)."""

from __future__ import annotations

import json

import click
from rich.markup import escape

from refarch.cli import output
from refarch.jobs.audit import HistoryRequest, run_history
from refarch.runner.history import DriftRow


@click.command("history")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--unit", metavar="PATH", help="Only this unit (its path in the repo).")
@click.option("--since", metavar="WHEN", help="Only runs since then: 2026-11-30, 2026-11-30T08:00, 12h, 7d.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack, VPC endpoint).")
@click.option("--drift", "drift", is_flag=True, help="Per unit: when it last drifted, when last in sync.")
@click.option("--profile", help="AWS profile of the identity that assumes each account's role.")
def command(
    directory: str,
    unit: str | None,
    since: str | None,
    as_json: bool,
    endpoint_url: str | None,
    drift: bool,
    profile: str | None,
) -> None:
    """Show every unit's runs of DIRECTORY, oldest first: when, run, action, status, who (CI
    actor or user, base AWS identity), commit, job. Reads the shared ledger when refarch.toml
    says [ledger] backend = "dynamodb", else this machine's .refarch/runs/."""
    request = HistoryRequest(
        directory, unit=unit, since=since, drift=drift, endpoint_url=endpoint_url, profile=profile
    )
    result = run_history(request)
    if drift:
        _drift(result.drift, as_json)
        return
    rows = result.runs
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


def _drift(rows: tuple[DriftRow, ...], as_json: bool) -> None:
    """`history --drift`: each unit's latest verdict, last drift and last return to sync."""
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.to_json(), sort_keys=True))
        return
    table = output.Table(
        ("unit", "account", "now", "checked", "last drifted", "drift", "back in sync"),
        title=f"refarch drift history: {len(rows)} unit(s)",
    )
    for row in rows:
        found = row.to_json()
        table.add_row(
            escape(row.unit),
            escape(row.account),
            row.status,
            found["checked"] or "",
            found["last_drifted"] or "never",
            ", ".join(row.drift_kinds),
            found["back_in_sync"] or ("" if row.last_drifted is None else "not yet"),
        )
    output.Printer().table(table)
