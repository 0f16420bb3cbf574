"""`refarch apply|plan-all|destroy|output DIR`: run an action on every unit, with a live view.

`refarch plan DIR` (the deployment order) belongs to plan_cmd; `terraform plan` on every unit
is `plan-all`.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from refarch.cli import changed, output
from refarch.cli.notices import generate_stacks_flag, show_notice
from refarch.cli.preflight_cmd import show
from refarch.cli.queue_options import (
    exclude_option,
    ignore_dependencies_option,
    include_option,
    load_options,
    profile_option,
    queue_external,
    repo_options,
    tf_path_option,
    typed_tf_path,
    with_dependencies_option,
)
from refarch.engines import ENGINES
from refarch.events import (
    AccountLockTrouble,
    RunEvent,
    RunNotice,
    RunStarted,
    UnitFinished,
    UnitOutput,
    UnitRetried,
    UnitStarted,
)
from refarch.exec.process import Interrupt
from refarch.jobs.deploy import (
    ConsentCallback,
    DependentsOutside,
    DeployEvent,
    DeployRequest,
    DeployResult,
    PlanLoaded,
    PreflightChecked,
    RunStarting,
    deploy,
)
from refarch.jobs.notices import ChangesFound, NothingToRun, StacksGenerated
from refarch.jobs.preflight import PreflightFailed
from refarch.models import Plan, RunReport, Status
from refarch.runner.ledger import resume_verb

STATUS_STYLE = {
    Status.SUCCEEDED: "green",
    Status.FAILED: "red",
    Status.NOT_RUN: "yellow",
    Status.INTERRUPTED: "magenta",
}


APPLY, PLAN, DESTROY, OUTPUT = "apply", "plan", "destroy", "output"
CHANGING = frozenset({APPLY, DESTROY})  # what asks for consent and guards accounts


def run_options(function: Callable[..., Any], action: str | None = None) -> Callable[..., Any]:
    """The options of a run verb: those `action` uses (all of them when None, for `stack run
    ACTION`)."""
    Option = Callable[[Callable[..., Any]], Callable[..., Any]]
    only: dict[int, frozenset[str]] = {}  # option's index -> the actions that use it

    def used_by(option: Option, *actions: str) -> Option:
        only[len(options)] = frozenset(actions)
        return option

    options: list[Option] = []
    options += [
        click.argument("directory", type=click.Path(exists=True, file_okay=False)),
        include_option("Only units matching this glob (their dependencies are read, not run)."),
        exclude_option("Leave out units matching this glob."),
        ignore_dependencies_option("Never run dependencies outside the selection (the default)."),
    ]
    options.append(used_by(with_dependencies_option, APPLY, PLAN, OUTPUT))
    options += [
        click.option(
            "--parallelism",
            "-j",
            type=click.IntRange(1, 64),
            default=4,
            show_default=True,
            envvar="TG_PARALLELISM",
            show_envvar=True,
            help="Units running at once.",
        ),
        click.option(
            "--engine",
            type=click.Choice(ENGINES),
            default=None,
            help="terragrunt (default when on PATH) or terraform.",
        ),
    ]
    options.append(
        used_by(
            click.option(
                "--resume",
                metavar="last|auto|RUN_ID",
                help="Re-run what did not succeed in that run (last: the last run of this verb), "
                "with the configuration as it is now; auto (CI): this job's unfinished run at this commit "
                "if any, else a fresh run.",
            ),
            APPLY,
            PLAN,
            DESTROY,
        )
    )
    options.append(
        used_by(
            click.option(
                "--rerun-changed",
                is_flag=True,
                help="With --resume, also re-run units that succeeded then and whose files changed since.",
            ),
            APPLY,
            PLAN,
            DESTROY,
        )
    )
    options += [
        click.option(
            "--report",
            "report_path",
            type=click.Path(dir_okay=False),
            help="Write the run summary as JSON to this file.",
        ),
    ]
    options.append(
        used_by(
            click.option("--fail-fast", is_flag=True, help="Start nothing new after a failure."),
            APPLY,
            PLAN,
            DESTROY,
        )
    )
    options.append(
        used_by(
            click.option(
                "--non-interactive",
                "--yes",
                "-y",
                "non_interactive",
                is_flag=True,
                envvar="TG_NON_INTERACTIVE",
                show_envvar=True,
                help="Do not ask for confirmation: needed for apply and destroy without a terminal.",
            ),
            APPLY,
            PLAN,
            DESTROY,
            OUTPUT,  # Terragrunt's global flag: CI passes it to every verb
        )
    )
    options.append(
        used_by(
            click.option(
                "--allow-broken-dependents",
                is_flag=True,
                help="Destroy even though units outside the selection depend on what is destroyed.",
            ),
            DESTROY,
        )
    )
    options += [
        click.option(
            "--source",
            type=click.Path(exists=True, file_okay=False),
            help="Use modules from this local folder instead of each unit's source.",
        ),
        click.option("--endpoint-url", help="AWS endpoint (moto, LocalStack, VPC endpoint)."),
        tf_path_option,
        profile_option,
        queue_external,
        changed.option,
    ]
    options.append(
        used_by(
            click.option(
                "--allow-unknown-account",
                is_flag=True,
                help="Apply/destroy units whose account.hcl has no aws_account_id (no wrong-account guard).",
            ),
            *CHANGING,
        )
    )
    options.append(
        used_by(
            click.option("--no-preflight", is_flag=True, help="Skip `refarch preflight` before it."), APPLY
        )
    )
    for index in reversed(range(len(options))):
        if action is None or action in only.get(index, {action}):
            function = options[index](function)
    return repo_options(function)


def execute(
    action: str,
    directory: str,
    *,
    present: Callable[[DeployResult], None] | None = None,
    job: Callable[..., DeployResult] = deploy,
    **opts: Any,
) -> None:
    """Plan, confirm, run with a live view, print the summary, exit with the run's code.
    `job` is the deploy job (or one built on it, as `stack output`); `present` prints the
    outputs of an `output` run (default: JSON by unit path)."""
    screen = DeployScreen(action, directory)
    try:
        result = job(
            request(action, directory, opts),
            confirm=terminal_consent(),
            on_event=screen.on_event,
            interrupt=screen.interrupt,
        )
    except PreflightFailed:
        click.secho("apply not started: create what is missing, or pass --no-preflight", fg="red", err=True)
        sys.exit(2)
    finally:
        screen.close()
    report = result.report
    if report is None:
        return
    screen.view_summary(report)  # first: whatever fails to be written next, the user sees how it went
    if opts.get("out_dir") and (Path(opts["out_dir"]) / "summary.md").is_file():
        click.echo(
            f"plans saved in {opts['out_dir']} (summary.md for the pull request); apply exactly them "
            f"with: refarch apply {directory} --plan-dir {opts['out_dir']}",
            err=True,
        )
    if action == "output" and present is not None:
        present(result)
    elif action == "output" and report.outputs:
        click.echo(json.dumps(report.outputs, indent=2))
    if result.report_not_written is not None:  # the run is over: its exit code stays the run's
        click.secho(f"error: {result.report_not_written}", fg="red", err=True)
    sys.exit(report.exit_code)


def request(action: str, directory: str, opts: Mapping[str, Any]) -> DeployRequest:
    """A run verb's flags as the job's request."""
    loaded = load_options(dict(opts))
    return DeployRequest(
        directory=directory,
        action=action,
        include=tuple(opts["include"]),
        exclude=tuple(opts["exclude"]),
        ignore_dependencies=opts["ignore_dependencies"],
        with_dependencies=opts.get("with_dependencies", False),
        queue_include_external=bool(opts["queue_include_external"]),
        endpoint_url=opts["endpoint_url"],
        profile=opts["profile"],
        hidden=loaded["hidden"],
        excludes_file=loaded["excludes_file"],
        features=loaded["features"],
        generate_stacks=generate_stacks_flag(opts["no_stack_generate"]),
        changed_since=opts.get("changed_since"),
        planned_only=opts.get("planned_only", False),
        plan_dir=Path(opts["plan_dir"]) if opts.get("plan_dir") else None,
        out_dir=Path(opts["out_dir"]) if opts.get("out_dir") else None,
        parallelism=opts["parallelism"],
        resume=opts.get("resume"),
        rerun_changed=opts.get("rerun_changed", False),
        fail_fast=opts.get("fail_fast", False),
        allow_unknown_account=opts.get("allow_unknown_account", False),
        allow_broken_dependents=opts.get("allow_broken_dependents", False),
        source=Path(opts["source"]) if opts["source"] else None,
        engine=opts["engine"],
        tf_path=typed_tf_path(opts["tf_path"]),
        non_interactive=opts.get("non_interactive", False),
        preflight=not opts.get("no_preflight", False),
        report_path=Path(opts["report_path"]) if opts.get("report_path") else None,
    )


def terminal_consent() -> ConsentCallback | None:
    """Asking the person at the terminal; None without one (consent must then be a flag)."""
    return ask if sys.stdin.isatty() else None


def ask(plan: Plan, action: str) -> bool:
    """Consent at the terminal (aborts, exit 1, on no)."""
    accounts = sorted({u.account for u in plan.units.values()})
    click.confirm(f"{action} {len(plan.units)} unit(s) in account(s) {', '.join(accounts)}?", abort=True)
    return True


class DeployScreen:
    """Renders the deploy job's events: its notes on stderr, then the run through a RunView
    (entered, with the Ctrl-C handler, when the run starts)."""

    def __init__(self, action: str, directory: str) -> None:
        self.action = action
        self.directory = directory
        self.interrupt = Interrupt()
        self.view: RunView | None = None
        self.restore: Callable[[], None] | None = None

    def on_event(self, event: DeployEvent) -> None:
        if isinstance(event, NothingToRun) and event.reason == "changed":
            changed.nothing_changed(event.message)
        elif isinstance(event, StacksGenerated | ChangesFound | NothingToRun):
            show_notice(event)
        elif isinstance(event, PlanLoaded):
            for warning in event.plan.warnings:
                click.secho(f"warning: {warning}", fg="yellow", err=True)
            for path in event.plan.skipped:
                reason = event.plan.reasons.get(path, "excluded")
                click.echo(f"{self.action}: skipping {path} ({reason})", err=True)
        elif isinstance(event, DependentsOutside):
            click.echo(
                f"these units depend on what {event.action} removes and are not in the selection:", err=True
            )
            for unit, needs in event.outside.items():
                click.echo(f"  {unit}  (needs {', '.join(needs)})", err=True)
        elif isinstance(event, PreflightChecked):
            show(event.report, Console(highlight=False, soft_wrap=True, stderr=True))
        elif isinstance(event, RunStarting):
            accounts = {p: u.account for p, u in event.plan.units.items()}
            self.view = RunView(self.action, len(event.plan.units), accounts=accounts)
            self.restore = install_interrupt(self.interrupt, self.view.notice)
            self.view.__enter__()
        elif self.view is not None:
            self.view.on_event(event)

    def close(self) -> None:
        """The run is over (or never started): the view stops, Ctrl-C is the default again."""
        if self.restore is not None:
            self.restore()
        if self.view is not None:
            self.view.__exit__()

    def view_summary(self, report: RunReport) -> None:
        if self.view is not None:
            self.view.summary(report, self.directory)


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
    """Renders run events: a rich progress line on a terminal; in CI (or without a terminal)
    one plain line per event with the unit and account in front, and on GitHub Actions each
    unit's output folded into a group printed when the unit finishes."""

    GROUP_LINES = 5000  # a unit's lines kept for its GitHub group; the rest are in its log

    def __init__(
        self,
        action: str,
        total: int,
        mode: output.Mode | None = None,
        accounts: Mapping[str, str] | None = None,
    ) -> None:
        self.action = action
        self.out = output.Printer(mode, stderr=action == "output")  # stdout: the outputs' JSON only
        self.mode = self.out.mode
        self.counts = {"done": 0, "running": 0, "failed": 0, "waiting": total}
        self.progress: Progress | None = None
        self.task: Any = None
        self.quiet_stdout = action == "output"  # the outputs are printed as JSON at the end
        self.accounts = dict(accounts or {})  # unit -> account
        self.started: set[str] = set()
        self.buffers: dict[str, list[str]] = {}

    def __enter__(self) -> RunView:
        if self.mode.rich:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.out.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self._description())
        return self

    def __exit__(self, *_: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def notice(self, text: str) -> None:
        self.out.line(f"[bold yellow]{escape(text)}[/]")

    def _description(self) -> str:
        c = self.counts
        return (
            f"{self.action}: [green]{c['done']} done[/] · {c['running']} running · "
            f"[red]{c['failed']} failed[/] · {c['waiting']} waiting"
        )

    def on_event(self, event: RunEvent) -> None:
        if isinstance(event, UnitOutput):
            if not (self.quiet_stdout and event.stream == "stdout"):
                self._tool_line(event.unit, event.text)
        elif isinstance(event, UnitStarted):
            self.started.add(event.unit)
            self.accounts[event.unit] = event.account
            self._move("waiting", "running")
            self.out.line(f"[cyan]==> {self.action}[/]", unit=event.unit, account=event.account)
        elif isinstance(event, UnitRetried):
            self.out.line(
                f"[yellow]<-> retry after attempt {event.attempt} of {event.attempts} "
                f"({escape(event.rule)}), in {event.delay:.1f}s[/]",
                unit=event.unit,
                account=self.accounts.get(event.unit),
            )
        elif isinstance(event, UnitFinished):
            self._finish(event)
        elif isinstance(event, RunNotice):
            self.out.line(f"[bold yellow]{escape(event.text)}[/]", unit=event.unit)
        elif isinstance(event, AccountLockTrouble):
            what = "lost the lock" if event.lost else "could not renew the lock"
            then = f"; {event.unit} and every unit after it not started" if event.unit else ""
            text = f"{what} on account {event.account}: {event.reason}{then}"
            self.out.line(f"[bold red]{escape(text)}[/]")
        elif isinstance(event, RunStarted):
            self.out.line(f"[bold]{escape(run_header(event))}[/]")
        if self.progress is not None:
            self.progress.update(self.task, description=self._description())

    def _tool_line(self, unit: str, text: str) -> None:
        if not self.mode.github:
            for line in text.splitlines() or [""]:  # the prefix on every line of a message
                self.out.line(f"[dim]{escape(output.prefix(unit))}[/]{escape(line)}")
            return
        buffer = self.buffers.setdefault(unit, [])
        if len(buffer) < self.GROUP_LINES:
            buffer.append(text)

    def _finish(self, event: UnitFinished) -> None:
        unit, status = event.unit, event.status
        account = self.accounts.get(unit)
        self._move("running" if unit in self.started else "waiting", "done" if status.ok else "failed")
        style = STATUS_STYLE.get(status, "white")
        note = f": {event.message.splitlines()[0]}" if event.message else ""
        if self.mode.github and unit in self.buffers:
            lines = self.buffers.pop(unit)
            with self.out.group(f"{unit} ({account}): {status}"):
                for text in lines:
                    self.out.line(escape(text), unit=unit)
                if len(lines) >= self.GROUP_LINES:
                    self.out.line(f"… the rest is in {escape(str(event.log or 'the unit log'))}", unit=unit)
        self.out.line(
            f"[{style}]<== {status}{escape(note)}[/] ({event.duration:.1f}s)", unit=unit, account=account
        )

    def _move(self, source: str, target: str) -> None:
        self.counts[source] = max(0, self.counts[source] - 1)
        self.counts[target] += 1

    def summary(self, report: RunReport, directory: str) -> None:
        """The end-of-run table, and what to do next (on stderr); on GitHub Actions also the
        job summary ($GITHUB_STEP_SUMMARY)."""
        table = output.Table(
            ("unit", "account", "status", "attempts", "time", "note"),
            title=f"refarch {report.action}: run {report.run_id}",
            right=("attempts", "time"),
        )
        for unit in report.units.values():
            style = STATUS_STYLE.get(unit.status, "white")
            note = unit.message.splitlines()[0] if unit.message else changes_note(unit.changes)
            table.add_row(
                escape(unit.path),
                escape(unit.account),
                f"[{style}]{unit.status}[/]",
                str(unit.attempts),
                f"{unit.duration:.1f}s",
                escape(note),
            )
        err = output.Printer(self.mode, stderr=True)
        err.table(table)
        counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts.items()))
        err.line(escape(f"{counts} in {report.duration:.1f}s; ledger {report.ledger_path}"))
        resume = f"refarch {resume_verb(report.action)} {directory} --resume {report.run_id}"
        if report.exit_code != 0:
            err.line(escape(f"resume with: {resume}"))
        summary = output.step_summary_path() if self.mode.github else None
        if summary is not None:
            try:
                with summary.open("a", encoding="utf-8") as handle:
                    handle.write(table.markdown() + f"\n{counts} in {report.duration:.1f}s\n\n")
            except OSError as exc:
                err.line(
                    escape(f"warning: could not add to the job summary {summary}: {exc.strerror or exc}")
                )


def changes_note(changes: Mapping[str, int] | None) -> str:
    """A unit's changes for the summary table: "no changes", or "+1 ~0 -2" (add, change, destroy)."""
    if changes is None:
        return ""
    if not any(changes.values()):
        return "no changes"
    return f"+{changes.get('add', 0)} ~{changes.get('change', 0)} -{changes.get('destroy', 0)}"


def run_header(event: RunStarted) -> str:
    """The run's first line: what runs, with which engine and which Terraform."""
    count = len(event.units) - len(event.done_before)
    text = f"refarch {resume_verb(event.action)}: run {event.run_id}, {count} unit(s), engine {event.engine}"
    tf = event.terraform
    if tf.get("path"):
        text += (
            f", Terraform {tf.get('version') or '(version unknown)'} ({tf['path']}, from {tf.get('source')})"
        )
    return text


def _command(action: str, verb: str, summary: str, *extra: Callable[[Any], Any]) -> click.Command:
    def command(directory: str, **opts: Any) -> None:
        execute(action, directory, **opts)

    command = run_options(command, action)

    for option in extra:
        command = option(command)
    command.__doc__ = summary
    return click.command(verb, help=summary)(command)


PLAN_DIR = click.option(
    "--plan-dir",
    type=click.Path(file_okay=False),
    help="Apply exactly the plans `plan-all --out-dir` saved there (no new plan); stale ones are refused.",
)
PLANNED_ONLY = click.option(
    "--planned-only",
    is_flag=True,
    help="With --plan-dir: only the selected units that have a saved plan there (CI apply jobs).",
)
OUT_DIR = click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    help="Keep each unit's plan and a JSON and markdown summary there (created 0700) for `apply --plan-dir`.",
)


commands = [
    _command(
        "apply",
        "apply",
        "Apply every unit of DIRECTORY: account tiers first, each unit "
        "as soon as what it depends on is applied.",
        PLAN_DIR,
        PLANNED_ONLY,
    ),
    _command(
        "plan",
        "plan-all",
        "Run `terraform plan` on every unit of DIRECTORY (to see the "
        "deployment order instead, use `refarch plan`).",
        OUT_DIR,
    ),
    _command("destroy", "destroy", "Destroy every unit of DIRECTORY, in the reverse order."),
    _command("output", "output", "Print the outputs of every unit of DIRECTORY as JSON."),
]
command = commands[0]
