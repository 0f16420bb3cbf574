"""`refarch bootstrap DIR`: pre-provision fresh accounts (state backend, keys, certs, secrets)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from refarch.cli import output
from refarch.jobs.bootstrap import (
    PROVISIONERS,
    BootstrapEvent,
    BootstrapRecord,
    BootstrapRequest,
    run_bootstrap,
)

STYLE = {
    "account-start": "cyan",
    "warning": "yellow",
    "account-done": "green",
    "account-failed": "red",
    "account-resumed": "dim",
}


@click.command("bootstrap")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--accounts", help="Comma-separated account names (default: every account).")
@click.option("--dry-run", is_flag=True, help="List the exact changes; make none.")
@click.option(
    "--only",
    metavar="NAME,...",
    help=f"Run only these provisioners: {','.join(PROVISIONERS)} (default: all).",
)
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack, a VPC endpoint).")
@click.option("--profile", help="AWS profile of the identity that assumes each account's role.")
@click.option(
    "--keys-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep private keys in this folder (0700, files 0400), not Secrets Manager.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the record (ARNs, ids, names) to this JSON file.",
)
def command(
    directory: str,
    accounts: str | None,
    dry_run: bool,
    only: str | None,
    endpoint_url: str | None,
    profile: str | None,
    keys_dir: Path | None,
    report: Path | None,
) -> None:
    """Create what DIRECTORY's accounts need before the first apply: state buckets and lock
    tables (from remote_state), and the key pairs, certificates, KMS administrator and
    passwords that bootstrap.hcl (or refarch.toml) names; find DNS zones. Tier by tier,
    through each account's role; only what is missing or drifted is changed."""
    out = output.Printer()
    names = tuple(n.strip() for n in accounts.split(",") if n.strip()) if accounts else None

    def show(event: BootstrapEvent) -> None:
        if event.kind == "result" and not (event.result and event.result.changes):
            return
        style = STYLE.get(event.kind, "")
        # Every line names its account (accounts run in parallel).
        who = output.account_prefix(event.account, event.message)
        out.line(f"{who}[{style}]{escape(event.message)}[/]" if style else who + escape(event.message))

    only_names = tuple(only.split(",")) if only is not None else None
    request = BootstrapRequest(
        directory,
        accounts=names,
        dry_run=dry_run,
        only=only_names,
        endpoint_url=endpoint_url,
        profile=profile,
        keys_dir=keys_dir,
        report=report,
    )
    render(out, run_bootstrap(request, on_event=show))


def render(out: output.Printer, record: BootstrapRecord) -> None:
    """A table per account, then the changes (or "nothing to do")."""
    # A dry run made nothing: its columns say what it would make, its status says dry run.
    columns = (
        ("would create", "would update", "exists") if record.dry_run else ("created", "updated", "exists")
    )
    table = output.Table(
        ("account", "id", "status", *columns),
        title="dry run: nothing was changed" if record.dry_run else "bootstrap",
        right=columns,
    )
    changed = 0
    for account in record.accounts.values():
        counts = {s: sum(r.status == s for r in account.results) for s in ("created", "updated", "exists")}
        changed += sum(1 for r in account.results if r.changes) if account.name in record.ran else 0
        status = "resumed" if account.name in record.resumed else account.status
        if record.dry_run and status == "done":
            status = "dry run"
        table.add_row(account.name, account.id, status, *(str(counts[s]) for s in counts))
    out.table(table)
    if record.nothing_to_do:
        out.line("[green]nothing to do[/]: every resource is in place")
        return
    verb = "would change" if record.dry_run else "changed"
    out.line(f"[bold]{verb} {changed} resource(s), {len(record.changes)} change(s):[/]")
    for change in record.changes:
        out.line(f"  {escape(change)}")
