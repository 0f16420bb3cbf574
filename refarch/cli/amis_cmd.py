"""`refarch amis build DIR [TEMPLATE...]` / `refarch amis prune DIR`: build the AMIs with Packer,
share them, record their ids; deregister the old ones nobody uses."""

from __future__ import annotations

import signal
from pathlib import Path

import click
from rich.markup import escape

from refarch.cli import output
from refarch.errors import UsageError
from refarch.exec.process import Interrupt
from refarch.jobs.amis import (
    DEFAULT_ACCOUNT,
    AmiEvent,
    AmiRecord,
    AmisBuildRequest,
    AmisPruneRequest,
    run_amis_build,
    run_amis_prune,
)
from refarch.provision.ami_retention import Retention

STYLE = {
    "start": "cyan",
    "retry": "yellow",
    "built": "green",
    "shared": "green",
    "failed": "red",
    "output": "dim",
}


def _names(value: str | None) -> tuple[str, ...] | None:
    """`a,b` -> ("a", "b"); "" -> () (explicitly none); None -> None (use the defaults)."""
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


@click.group("amis")
def command() -> None:
    """Build the architecture's AMIs (ECS/EKS node, OpenVPN, bastion) with Packer."""


def _repo_and_templates(arguments: tuple[str, ...], repo: str | None) -> tuple[Path, tuple[str, ...]]:
    """DIR [TEMPLATE...]; with the deprecated --repo DIR every argument is a template."""
    if repo is not None:
        click.secho("warning: --repo is deprecated; use `refarch amis build DIR [TEMPLATE...]`", err=True)
        return Path(repo).resolve(), arguments
    if not arguments or not Path(arguments[0]).is_dir():
        raise UsageError(
            f"{arguments[0]!r} is not a folder" if arguments else "missing the live repo folder",
            hint="usage: refarch amis build DIR [TEMPLATE...], e.g. `refarch amis build live bastion`",
        )
    return Path(arguments[0]).resolve(), arguments[1:]


KEEP_HELP = "Then keep N refarch-built images per template and region (default: [amis] keep)."


@command.command("build")
@click.argument("arguments", nargs=-1, metavar="DIR [TEMPLATE]...")
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False),
    help="Deprecated: give the live repo as DIR.",
    hidden=True,
)
@click.option(
    "--account",
    default=DEFAULT_ACCOUNT,
    show_default=True,
    help="Account (name or id) that builds and owns the AMIs.",
)
@click.option(
    "--regions", help="Comma-separated regions (default: where the sharing accounts run, or [amis] regions)."
)
@click.option(
    "--share-with",
    help="Comma-separated accounts given launch permission (default: dev,stage,prod); '' shares with none.",
)
@click.option("--parallelism", "-j", type=click.IntRange(1, 32), help="Packer builds at once (default: 2).")
@click.option(
    "--endpoint-url",
    help="AWS endpoint (moto, LocalStack); Packer gets it as "
    "custom_endpoint_ec2 and builds with communicator none.",
)
@click.option("--profile", help="AWS profile of the identity that assumes each account's role.")
@click.option("--quiet", "-q", is_flag=True, help="Do not stream Packer's output.")
@click.option("--keep", type=click.IntRange(1), help=KEEP_HELP)
def build(
    arguments: tuple[str, ...],
    repo: str | None,
    account: str,
    regions: str | None,
    share_with: str | None,
    parallelism: int | None,
    endpoint_url: str | None,
    profile: str | None,
    quiet: bool,
    keep: int | None,
) -> None:
    """Build TEMPLATE... (default: every template in packer/) for the live repo DIR in each
    region, share the AMIs with the app accounts, and record the ids in .refarch/amis.json and
    amis.auto.hcl. A failed build keeps the last good id. With --keep, older unused images go."""
    root, templates = _repo_and_templates(arguments, repo)
    request = AmisBuildRequest(
        root,
        templates,
        account,
        regions=_names(regions),
        share_with=_names(share_with),
        parallelism=parallelism,
        endpoint_url=endpoint_url,
        profile=profile,
        keep=keep,
    )
    out = output.Printer()

    def show(event: AmiEvent) -> None:
        if quiet and event.kind == "output":
            return
        style = STYLE[event.kind]
        out.line(
            f"[{style}]{escape(event.message)}[/]", unit=f"{event.template}/{event.region}", account=account
        )

    interrupt = Interrupt()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupt.request())
    try:
        record = run_amis_build(request, on_event=show, interrupt=interrupt)
    finally:
        signal.signal(signal.SIGINT, previous)
    render(out, record, root)


def render(out: output.Printer, record: AmiRecord, root: Path) -> None:
    """The summary: one row per AMI built."""
    table = output.Table(
        ("template", "region", "shared with", "attempts", "AMI"), right=("attempts",), no_wrap=("AMI",)
    )
    for b in sorted(record.builds, key=lambda b: (b.template, b.region)):
        table.add_row(b.template, b.region, ", ".join(b.shared_with) or "-", str(b.attempts), b.ami_id)
    out.table(table)
    out.line(f"recorded in {record.path.relative_to(root)}; units read {record.hcl_path.relative_to(root)}")
    if record.retention is not None:
        render_retention(out, record.retention)


@command.command("prune")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--keep", type=click.IntRange(1), help="Images kept per template and region (default: [amis] keep)."
)
@click.option("--account", default=DEFAULT_ACCOUNT, show_default=True, help="Account that owns the AMIs.")
@click.option("--regions", help="Comma-separated regions (default: [amis] regions and those recorded).")
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack).")
@click.option("--profile", help="AWS profile of the identity that assumes each account's role.")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def prune(
    directory: str,
    keep: int | None,
    account: str,
    regions: str | None,
    endpoint_url: str | None,
    profile: str | None,
    dry_run: bool,
) -> None:
    """Deregister DIRECTORY's older refarch-built AMIs and delete their snapshots, keeping the
    newest N per template and region, the recorded ones and any a unit's inputs name."""
    request = AmisPruneRequest(
        directory,
        keep,
        account,
        regions=_names(regions),
        endpoint_url=endpoint_url,
        profile=profile,
        dry_run=dry_run,
    )
    render_retention(output.Printer(), run_amis_prune(request))


def render_retention(out: output.Printer, retention: Retention) -> None:
    """One line per image removed, and why the others stayed."""
    verb = "would remove" if retention.dry_run else "removed"
    for image in retention.removed:
        snapshots = ", ".join(image.snapshots) or "no snapshot"
        out.line(f"[red]{verb}[/] {image.template}/{image.region} {image.ami_id} ({snapshots})")
    for kept in retention.kept:
        if kept.reason != "newest":
            out.line(
                f"[dim]kept {kept.image.template}/{kept.image.region} {kept.image.ami_id}: {kept.reason}[/]"
            )
    out.line(f"retention (keep {retention.keep}): {len(retention.removed)} image(s) {verb}")
