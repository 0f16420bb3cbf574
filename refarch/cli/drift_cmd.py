"""`refarch drift DIR`: plan every unit read-only and say which drifted from the code.

Exit codes are Terraform's `plan -detailed-exitcode`: 0 in sync, 2 drift found, 1 could not
tell — and every error, usage errors included, is 1 here: 2 always means drift.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from refarch.cli import output
from refarch.cli.notices import generate_stacks_flag, show_notice
from refarch.cli.queue_options import (
    exclude_option,
    ignore_dependencies_option,
    include_option,
    load_options,
    repo_options,
)
from refarch.cli.run_cmd import RunView, install_interrupt
from refarch.engines import ENGINES
from refarch.errors import RefarchError
from refarch.events import DriftChecked
from refarch.exec.process import Interrupt
from refarch.files import write_atomic
from refarch.jobs.deploy import PlanLoaded
from refarch.jobs.drift import DRIFTED, FAILED, DriftEvent, DriftReport, DriftRequest, UnitDrift, drift
from refarch.jobs.notices import StacksGenerated

STYLE = {"in_sync": "green", DRIFTED: "yellow", FAILED: "red"}
JOBS = click.IntRange(1, 64)


class DriftUsageError(click.UsageError):
    """A usage error of `refarch drift`: exit 1, since 2 means drift found there."""

    exit_code = 1


class DriftCommand(click.Command):
    """A bad option exits 1, not click's 2: for `refarch drift`, 2 means drift found."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise DriftUsageError(exc.message, exc.ctx) from None


@click.command("drift", cls=DriftCommand)
@click.argument("directory", type=click.Path(file_okay=False))
@include_option("Only units matching this glob (and what they depend on), e.g. 'dev/*' for one account.")
@exclude_option("Leave out units matching this glob.")
@ignore_dependencies_option("With --include, read the dependencies' outputs without planning them.")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    help="Keep the plans, drift.json and summary.md there (0700); default .refarch/drift.",
)
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Also write drift.json here.")
@click.option("--json", "as_json", is_flag=True, help="Print drift.json on stdout.")
@click.option("--parallelism", "-j", type=JOBS, default=4, show_default=True, help="Units planned at once.")
@click.option("--engine", type=click.Choice(ENGINES), default=None, help="terragrunt or terraform.")
@click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack, VPC endpoint).")
@repo_options
def command(
    directory: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    ignore_dependencies: bool,
    out_dir: str | None,
    report_path: str | None,
    as_json: bool,
    parallelism: int,
    engine: str | None,
    endpoint_url: str | None,
    **opts: Any,
) -> None:
    """Plan every unit of DIRECTORY read-only (-lock=false, the [ci] plan_role_name role) and
    say which drifted: infrastructure changed outside Terraform, or code not applied. Exits 0
    in sync, 2 drift found, 1 could not tell (errors too), as `terraform plan -detailed-exitcode`."""
    try:
        request = DriftRequest(
            directory,
            include=include,
            exclude=exclude,
            ignore_dependencies=ignore_dependencies,
            out_dir=Path(out_dir) if out_dir else None,
            parallelism=parallelism,
            endpoint_url=endpoint_url,
            engine=engine,
            repo_options=load_options(opts),
            generate_stacks=generate_stacks_flag(opts["no_stack_generate"]),
        )
        report = _check(request)
    except RefarchError as exc:
        exc.exit_code = 1 if exc.exit_code == 2 else exc.exit_code
        raise
    document = report.to_json()
    if report_path:
        write_atomic(Path(report_path), json.dumps(document, indent=2) + "\n")
    if as_json:
        click.echo(json.dumps(document, indent=2))
    render(report)
    sys.exit(report.exit_code)


def _check(request: DriftRequest) -> DriftReport:
    """The drift job, its plan runs shown through a RunView (entered when the plan is loaded,
    with the Ctrl-C handler) and each verdict as a line."""
    interrupt = Interrupt()
    views: list[RunView] = []
    restore: list[Callable[[], None]] = []

    def on_event(event: DriftEvent) -> None:
        if isinstance(event, StacksGenerated):
            show_notice(event)
        elif isinstance(event, PlanLoaded):
            accounts = {p: u.account for p, u in event.plan.units.items()}
            views.append(RunView("plan", len(event.plan.units), accounts=accounts))
            restore.append(install_interrupt(interrupt, views[0].notice))
            views[0].__enter__()
        elif isinstance(event, DriftChecked):
            kinds = f" ({', '.join(event.kinds)})" if event.kinds else ""
            style = STYLE.get(event.status, "white")
            views[0].out.line(
                f"[{style}]drift: {event.status}{kinds}[/]", unit=event.unit, account=event.account
            )
        else:
            views[0].on_event(event)

    try:
        return drift(request, on_event=on_event, interrupt=interrupt)
    finally:
        for undo in restore:
            undo()
        for view in views:
            view.__exit__()


def render(report: DriftReport) -> None:
    """The verdict table on stderr; on GitHub Actions the markdown in the job summary."""
    table = output.Table(
        ("unit", "account", "drift", "kind", "resources", "outputs", "note"),
        title=f"refarch drift: run {report.run_id}",
        right=("resources", "outputs"),
    )
    for unit in report.units:
        table.add_row(*_row(unit))
    err = output.Printer(stderr=True)
    err.table(table)
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("in_sync", DRIFTED, FAILED))
    err.line(escape(f"{counts} in {report.duration:.1f}s; report {report.folder / 'drift.json'}"))
    summary = output.step_summary_path() if err.mode.github else None
    if summary is not None:
        with summary.open("a", encoding="utf-8") as handle:
            handle.write(report.markdown() + "\n")


def _row(unit: UnitDrift) -> tuple[str, ...]:
    """One unit's line of the verdict table."""
    first = unit.message.splitlines()[0] if unit.message else ""
    counts = (str(len(unit.resources)), str(len(unit.outputs)))
    status = f"[{STYLE.get(unit.status, 'white')}]{unit.status}[/]"
    return (escape(unit.unit), escape(unit.account), status, ", ".join(unit.kinds), *counts, escape(first))
