"""`refarch demo [DIR]`: the main job on an embedded AWS, with the plan, live progress and a summary."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.markup import escape

from refarch.cli import output
from refarch.cli.plan_cmd import render as render_plan
from refarch.cli.run_cmd import RunView, install_interrupt
from refarch.events import RunEvent, RunFinished, RunStarted
from refarch.exec.process import Interrupt
from refarch.jobs.demo import DemoEvent, DemoResult
from refarch.jobs.demo_real import EXPECTED_SECONDS, RealDemoResult
from refarch.jobs.demo_run import MODULES, DemoRequest, run_demo
from refarch.provision.record import RECORD_PATH

SHOWN = {
    "bootstrap": ("account-done", "account-failed", "warning"),
    "ami": ("start", "built", "shared", "retry", "failed"),
}


@click.command("demo")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option(
    "--keep",
    is_flag=True,
    help="Save the embedded AWS in DIR at the end and start the next --keep run from "
    "it (that run then changes nothing). Without it, each run starts from nothing.",
)
@click.option("--destroy", is_flag=True, help="After the apply, destroy every unit in reverse order.")
@click.option(
    "--trace",
    type=click.Path(dir_okay=False),
    help="Write the runs' OpenTelemetry spans to this file, one JSON span a line (the telemetry extra).",
)
@click.option(
    "--modules",
    type=click.Choice(MODULES),
    default="twins",
    show_default=True,
    help="twins: modules-demo/ (no provider, fast). real: the shipped modules/ with the real "
    f"hashicorp/aws provider, then a second plan that must show no changes, then a destroy "
    f"({EXPECTED_SECONDS}).",
)
def command(directory: str | None, keep: bool, destroy: bool, trace: str | None, modules: str) -> None:
    """Deploy the reference architecture on an embedded AWS (a moto server on 127.0.0.1 with
    five accounts): render a live repo, bootstrap it, build and share an AMI with Packer, and
    apply every unit with Terraform. DIR defaults to .refarch/demo (.refarch/demo-real with
    --modules real)."""
    if modules == "real" and keep:
        raise click.UsageError("--keep is for the twins: the real demo always starts anew and destroys")
    view = DemoView()
    interrupt = Interrupt()
    restore = install_interrupt(interrupt, lambda text: view.out.line(f"[yellow]{escape(text)}[/]"))
    request = DemoRequest(directory, modules, keep, destroy, Path(trace) if trace else None)
    try:
        result = run_demo(request, on_event=view.on_event, interrupt=interrupt)
    finally:
        restore()
        view.close()
        if trace:
            view.out.line(f"trace: {escape(trace)} (one JSON span a line)")
    if isinstance(result, RealDemoResult):
        view.real_summary(result)
        sys.exit(result.exit_code)
    view.summary(result)
    view.out.line(
        "  the twins prove the orchestration; `refarch demo --modules real` applies the shipped "
        f"modules with the real AWS provider, plans again and destroys ({EXPECTED_SECONDS})"
    )
    sys.exit(result.exit_code)


class DemoView:
    """Renders demo events: a header per stage, bootstrap and AMI steps, the plan, and the
    runs through run_cmd's RunView (progress on a terminal, unit lines in CI)."""

    def __init__(self, mode: output.Mode | None = None) -> None:
        self.out = output.Printer(mode)
        self.mode = self.out.mode
        self.run_view: RunView | None = None
        self.stages: dict[str, int] = {}

    def on_event(self, event: DemoEvent) -> None:
        payload = event.payload
        if event.kind == "stage":
            number = self.stages.setdefault(event.stage, len(self.stages) + 1)  # in the order run
            self.out.line(f"\n[bold cyan]{number}. {escape(event.stage)}[/]  {escape(event.message)}")
        elif event.kind == "note":
            self.out.line(f"   [yellow]{escape(event.message)}[/]")
        elif event.kind == "plan" and event.stage == "apply":
            render_plan(payload)
        elif event.kind in SHOWN and payload.kind in SHOWN[event.kind]:
            style = (
                "red"
                if "fail" in payload.kind
                else "yellow"
                if payload.kind in ("warning", "retry")
                else "white"
            )
            who = output.account_prefix(getattr(payload, "account", None), event.message)
            self.out.line(f"   {who}[{style}]{escape(event.message)}[/]")
        elif event.kind == "run":
            self._run(payload)

    def _run(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            self.run_view = RunView(event.action, len(event.units), self.mode)
            self.run_view.__enter__()
        elif self.run_view is not None:
            self.run_view.on_event(event)
            if isinstance(event, RunFinished):
                self.close()

    def close(self) -> None:
        if self.run_view is not None:
            self.run_view.__exit__()
            self.run_view = None

    def summary(self, result: DemoResult) -> None:
        """The runs' tables, then what the demo made and where its records are."""
        here = Path.cwd()

        def show(path: Path | str) -> str:
            return escape(os.path.relpath(path, here) if str(path).startswith(str(here)) else str(path))

        for report in (result.apply, result.destroy):
            if report is not None:
                RunView(report.action, len(report.units), self.mode).summary(report, show(result.repo_root))
        out = self.out
        apply = result.apply
        stages = " · ".join(f"{name} {seconds:.1f}s" for name, seconds in result.stages.items())
        verdict = "[green]ok[/]" if result.ok else "[red]failed[/]"
        out.line(f"\n[bold]refarch demo: {verdict} in {result.duration:.1f}s[/] ({stages})")
        rows = [
            ("live repo", show(result.repo_root)),
            (
                "bootstrap",
                f"{result.bootstrap_changes} change(s); record {show(result.repo_root / RECORD_PATH)}",
            ),
            ("AMI", f"{result.ami_id} ({'built' if result.ami_built else 'kept'}, shared with dev and prod)"),
            (
                "apply",
                f"{apply.counts.get('succeeded', 0)} of {len(apply.units)} succeeded, "
                f"{len(result.unchanged)} without changes; report {show(result.apply_report)}",
            ),
            ("ledger", show(apply.ledger_path or "")),
            ("logs", show(Path(apply.ledger_path or "").with_suffix("")) + "/"),
        ]
        if result.destroy is not None and result.destroy_report is not None:
            rows.append(
                (
                    "destroy",
                    f"{result.destroy.counts.get('succeeded', 0)} of "
                    f"{len(result.destroy.units)} succeeded; report "
                    f"{show(result.destroy_report)}",
                )
            )
        rows.append(
            (
                "embedded AWS",
                f"saved in {show(result.state_path)}"
                if result.state_path
                else "stopped; not kept (the next run starts from nothing)",
            )
        )
        for name, text in rows:
            out.line(f"  {name:<13} {text}")
        if not result.ok:
            out.line("  the embedded AWS of this run is gone: run `refarch demo` again rather than resuming")

    def real_summary(self, result: RealDemoResult) -> None:
        """The runs' tables, then whether the second plan was clean, and the records."""
        for report in (result.apply, result.plan, result.destroy):
            if report is not None:
                RunView(report.action, len(report.units), self.mode).summary(report, str(result.repo_root))
        stages = " · ".join(f"{name} {seconds:.1f}s" for name, seconds in result.stages.items())
        verdict = "[green]ok[/]" if result.ok else "[red]failed[/]"
        self.out.line(
            f"\n[bold]refarch demo --modules real: {verdict} in {result.duration:.1f}s[/] ({stages})"
        )
        second = (
            "not run (the apply failed)"
            if result.plan is None
            else f"changes in {', '.join(result.changed)}"
            if result.changed
            else f"no changes in any of {len(result.plan.units)} units"
        )
        rows = [
            ("live repo", str(result.repo_root)),
            ("provider", f"hashicorp/aws from the {result.provider_source}"),
            ("second plan", second),
            *((f"{action} report", str(path)) for action, path in result.reports.items()),
        ]
        for name, text in rows:
            self.out.line(f"  {escape(name):<15} {escape(text)}")
