"""`refarch amis build [TEMPLATE...]`: build the AMIs with Packer, share them, record their ids."""

from __future__ import annotations

import signal
from pathlib import Path

import click
from rich.markup import escape

from refarch.cli import output
from refarch.exec.process import Interrupt
from refarch.jobs.amis import DEFAULT_ACCOUNT, AmiEvent, AmiRecord, build_amis
from refarch.repo import load_repo
from refarch.settings import load_settings

STYLE = {
    "start": "cyan",
    "retry": "yellow",
    "built": "green",
    "shared": "green",
    "failed": "red",
    "output": "dim",
}


def _names(value: str | None) -> list[str] | None:
    """`a,b` -> ["a", "b"]; "" -> [] (explicitly none); None -> None (use the defaults)."""
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


@click.group("amis")
def command() -> None:
    """Build the architecture's AMIs (ECS/EKS node, OpenVPN, bastion) with Packer."""


@command.command("build")
@click.argument("templates", nargs=-1)
@click.option(
    "--repo",
    "directory",
    default=".",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="The infrastructure-live repo.",
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
@click.option("--quiet", "-q", is_flag=True, help="Do not stream Packer's output.")
def build(
    templates: tuple[str, ...],
    directory: str,
    account: str,
    regions: str | None,
    share_with: str | None,
    parallelism: int | None,
    endpoint_url: str | None,
    quiet: bool,
) -> None:
    """Build TEMPLATE... (default: every template in packer/) in each region, share the AMIs
    with the app accounts, and record the ids in .refarch/amis.json and amis.auto.hcl."""
    root = Path(directory).resolve()
    settings = load_settings(root).with_overrides(endpoint_url=endpoint_url)
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
        record = build_amis(
            load_repo(root, settings=settings),
            settings,
            templates=templates or None,
            account=account,
            regions=_names(regions),
            share_with=_names(share_with),
            parallelism=parallelism,
            on_event=show,
            interrupt=interrupt,
        )
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
