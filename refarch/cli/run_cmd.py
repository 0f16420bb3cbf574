"""`refarch apply|plan-all|destroy|output DIR`: run an action on every unit, with a live view.

`refarch plan DIR` (the deployment order) belongs to plan_cmd; `terraform plan` on every unit
is `plan-all`.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from refarch.models import Plan
from refarch.run.engines import ENGINES, make_engine
from refarch.run.process import Interrupt
from refarch.run.report import DONE_BEFORE, FAILED, INTERRUPTED, NOT_RUN, SUCCEEDED, RunReport, write_report
from refarch.run.runner import RunEvent, load_plan, run

STATUS_STYLE = {SUCCEEDED: "green", FAILED: "red", NOT_RUN: "yellow", INTERRUPTED: "magenta"}


def run_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The options every run verb shares."""
    options = [
        click.argument("directory", type=click.Path(exists=True, file_okay=False)),
        click.option(
            "--include",
            multiple=True,
            metavar="PATTERN",
            help="Only units matching this glob (and what they depend on).",
        ),
        click.option(
            "--exclude", multiple=True, metavar="PATTERN", help="Leave out units matching this glob."
        ),
        click.option(
            "--ignore-dependencies",
            is_flag=True,
            help="With --include, take dependencies as already applied.",
        ),
        click.option(
            "--parallelism",
            "-j",
            type=click.IntRange(1, 64),
            default=4,
            show_default=True,
            help="Units running at once.",
        ),
        click.option(
            "--engine",
            type=click.Choice(ENGINES),
            default=None,
            help="terragrunt (default when on PATH) or terraform.",
        ),
        click.option("--resume", metavar="last|RUN_ID", help="Re-run only what did not succeed in that run."),
        click.option(
            "--report",
            "report_path",
            type=click.Path(dir_okay=False),
            help="Write the run summary as JSON to this file.",
        ),
        click.option("--fail-fast", is_flag=True, help="Start nothing new after a failure."),
        click.option(
            "--non-interactive",
            is_flag=True,
            help="Never ask for confirmation (implied when stdin is not a terminal).",
        ),
        click.option(
            "--source",
            type=click.Path(exists=True, file_okay=False),
            help="Use modules from this local folder instead of each unit's source.",
        ),
        click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack, VPC endpoint)."),
        click.option(
            "--allow-unknown-account",
            is_flag=True,
            help="Apply/destroy units whose account.hcl has no aws_account_id (no wrong-account guard).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def execute(action: str, directory: str, **opts: Any) -> None:
    """Plan, confirm, run with a live view, print the summary, exit with the run's code."""
    plan = load_plan(
        directory,
        action,
        include=opts["include"],
        exclude=opts["exclude"],
        ignore_dependencies=opts["ignore_dependencies"],
        endpoint_url=opts["endpoint_url"],
        allow_unknown_account=opts["allow_unknown_account"],
    )
    if not plan.units:
        click.echo(f"{action}: no unit selected")
        return
    confirm(plan, action, opts["non_interactive"])
    engine = make_engine(opts["engine"], plan.repo.settings) if opts["engine"] else None
    view = RunView(action, len(plan.units), sys.stdout.isatty())
    interrupt = Interrupt()
    restore = install_interrupt(interrupt, view.notice)
    try:
        with view:
            report = run(
                plan,
                action,
                plan.repo.settings,
                engine=engine,
                parallelism=opts["parallelism"],
                on_event=view.on_event,
                resume=opts["resume"],
                fail_fast=opts["fail_fast"],
                interrupt=interrupt,
                source_override=Path(opts["source"]).resolve() if opts["source"] else None,
            )
    finally:
        restore()
    if opts["report_path"]:
        write_report(report, Path(opts["report_path"]))
    view.summary(report, directory)
    if action == "output" and report.outputs:
        click.echo(json.dumps(report.outputs, indent=2))
    sys.exit(report.exit_code)


def confirm(plan: Plan, action: str, non_interactive: bool) -> None:
    """Ask before changing infrastructure when a person is at the terminal."""
    if action not in ("apply", "destroy") or non_interactive or not sys.stdin.isatty():
        return
    accounts = sorted({u.account for u in plan.units.values()})
    click.confirm(f"{action} {len(plan.units)} unit(s) in account(s) {', '.join(accounts)}?", abort=True)


def install_interrupt(interrupt: Interrupt, notice: Callable[[str], None]) -> Callable[[], None]:
    """SIGINT/SIGTERM: first asks the running tools to stop cleanly, a second one kills them."""
    count = [0]

    def handler(signum: int, frame: FrameType | None) -> None:
        count[0] += 1
        interrupt.request()
        if count[0] == 1:
            notice("stopping: waiting for running units to release their locks (Ctrl-C again to kill them)")
        else:
            notice("killing running units")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


class RunView:
    """Renders run events: a rich progress bar on a terminal, plain prefixed lines in CI."""

    def __init__(self, action: str, total: int, tty: bool) -> None:
        self.action = action
        self.tty = tty
        self.console = Console(highlight=False, soft_wrap=True, force_terminal=tty or None, no_color=not tty)
        self.counts = {"done": 0, "running": 0, "failed": 0, "waiting": total}
        self.progress: Progress | None = None
        self.task: Any = None
        self.quiet_stdout = action == "output"  # the outputs are printed as JSON at the end
        self.started: set[str] = set()

    def __enter__(self) -> RunView:
        if self.tty:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self._description())
        return self

    def __exit__(self, *_: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def notice(self, text: str) -> None:
        self.console.print(f"[bold yellow]{escape(text)}[/]", style=None)

    def _description(self) -> str:
        c = self.counts
        return (
            f"{self.action}: [green]{c['done']} done[/] · {c['running']} running · "
            f"[red]{c['failed']} failed[/] · {c['waiting']} waiting"
        )

    def _print(self, text: str) -> None:
        if self.tty:
            self.console.print(text)
        else:
            click.echo(Console(no_color=True).render_str(text).plain)

    def on_event(self, event: RunEvent) -> None:
        unit, fields = event.unit or "", event.fields
        if event.kind == "line":
            if not (self.quiet_stdout and fields["stream"] == "stdout"):
                self._print(f"[dim]\\[{escape(unit)}][/] {escape(fields['text'])}")
        elif event.kind == "unit_start":
            self.started.add(unit)
            self._move("waiting", "running")
            self._print(f"[cyan]==> {escape(unit)}[/] ({escape(fields['account'])})")
        elif event.kind == "retry":
            self._print(
                f"[yellow]<-> {escape(unit)}: retry after attempt {fields['attempt']} "
                f"of {fields['attempts']} ({escape(fields['rule'])}), in "
                f"{fields['delay']:.1f}s[/]"
            )
        elif event.kind == "unit_finish":
            self._finish(unit, fields)
        if self.progress is not None:
            self.progress.update(self.task, description=self._description())

    def _finish(self, unit: str, fields: Any) -> None:
        status = fields["status"]
        source = "running" if unit in self.started else "waiting"
        self._move(source, "done" if status in (SUCCEEDED, DONE_BEFORE) else "failed")
        style = STATUS_STYLE.get(status, "white")
        note = f": {fields['message'].splitlines()[0]}" if fields["message"] else ""
        self._print(f"[{style}]<== {escape(unit)} {status}{escape(note)}[/] ({fields['duration']:.1f}s)")

    def _move(self, source: str, target: str) -> None:
        self.counts[source] = max(0, self.counts[source] - 1)
        self.counts[target] += 1

    def summary(self, report: RunReport, directory: str) -> None:
        """The end-of-run table, and what to do next."""
        table = Table(title=f"refarch {report.action}: run {report.run_id}", title_justify="left")
        for column in ("unit", "account", "status", "attempts", "time", "note"):
            table.add_column(column, justify="right" if column in ("attempts", "time") else "left")
        for unit in report.units.values():
            style = STATUS_STYLE.get(unit.status, "white")
            note = unit.message.splitlines()[0] if unit.message else ""
            table.add_row(
                unit.path,
                unit.account,
                f"[{style}]{unit.status}[/]",
                str(unit.attempts),
                f"{unit.duration:.1f}s",
                escape(note),
            )
        console = Console(
            highlight=False, no_color=not self.tty, file=sys.stderr, width=None if self.tty else 160
        )
        console.print(table)
        counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts.items()))
        console.print(f"{counts} in {report.duration:.1f}s; ledger {report.ledger_path}")
        if report.exit_code != 0:
            console.print(f"resume with: refarch {_verb(report.action)} {directory} --resume {report.run_id}")


def _verb(action: str) -> str:
    return "plan-all" if action == "plan" else action


def _command(action: str, verb: str, summary: str) -> click.Command:
    @run_options
    def command(directory: str, **opts: Any) -> None:
        execute(action, directory, **opts)

    command.__doc__ = summary
    return click.command(verb, help=summary)(command)


commands = [
    _command(
        "apply",
        "apply",
        "Apply every unit of DIRECTORY: account tiers first, each unit "
        "as soon as what it depends on is applied.",
    ),
    _command(
        "plan",
        "plan-all",
        "Run `terraform plan` on every unit of DIRECTORY (to see the "
        "deployment order instead, use `refarch plan`).",
    ),
    _command("destroy", "destroy", "Destroy every unit of DIRECTORY, in the reverse order."),
    _command("output", "output", "Print the outputs of every unit of DIRECTORY as JSON."),
]
command = commands[0]
