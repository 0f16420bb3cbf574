"""How the CLI writes: rich on a terminal, plain lines in CI. The one place that decides which.

Plain mode (`CI` set, or stdout not a terminal): no spinner and no live view, one line per
event with the unit or account in front, no colour, tables as aligned text that never wrap.
On GitHub Actions (`GITHUB_ACTIONS=true`) a unit's output is folded into a `::group::`, and a
configuration error becomes an `::error file=…,line=…::` annotation on the file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # rich (20 ms to import) loads when something is printed with it
    from rich.console import Console
    from rich.table import Table as RichTable

FALSE_WORDS = ("", "0", "false", "no", "off")


def warn(messages: Sequence[str]) -> None:
    """`warning:` lines on stderr (stdout stays clean for JSON)."""
    for message in messages:
        click.secho(f"warning: {message}", fg="yellow", err=True)


@dataclass(frozen=True)
class Mode:
    """Which way to write: `plain` lines (CI or no terminal), and GitHub's workflow commands."""

    plain: bool
    github: bool = False

    @property
    def rich(self) -> bool:
        """A person at a terminal: colours, a spinner, live progress."""
        return not self.plain


def detect(env: Mapping[str, str] | None = None, tty: bool | None = None) -> Mode:
    """Plain when `CI` is set (to anything but false/0) or stdout is not a terminal."""
    env = os.environ if env is None else env
    tty = sys.stdout.isatty() if tty is None else tty
    ci = env.get("CI", "").strip().lower() not in FALSE_WORDS
    return Mode(plain=ci or not tty, github=env.get("GITHUB_ACTIONS", "").lower() == "true")


def escape(markup: str) -> str:
    """Text made safe to put in rich markup (rich's own escape)."""
    from rich.markup import escape as rich_escape  # noqa: PLC0415 - see TYPE_CHECKING above

    return rich_escape(markup)


def console(mode: Mode, *, stderr: bool = False) -> Console:
    """A rich console for `mode`: colour and live rendering on a terminal only, and in plain
    mode no width limit (a long line is one line in a CI log, never wrapped)."""
    from rich.console import Console  # noqa: PLC0415 - see TYPE_CHECKING above

    if mode.plain:
        return Console(
            stderr=stderr,
            highlight=False,
            no_color=True,
            force_terminal=False,
            soft_wrap=True,
            width=100_000,
        )
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def plain_text(markup: str) -> str:
    """Rich markup without its styles."""
    from rich.text import Text  # noqa: PLC0415 - see TYPE_CHECKING above

    return Text.from_markup(markup).plain


def prefix(unit: str | None = None, account: str | None = None) -> str:
    """What stands in front of a plain line: `[unit] (account) `, `[account] `, or nothing."""
    if unit and account:
        return f"[{unit}] ({account}) "
    if unit or account:
        return f"[{unit or account}] "
    return ""


def account_prefix(account: str | None, message: str) -> str:
    """`[account] ` (escaped markup) for a line about one account, unless the message
    already starts with the account's name."""
    if not account or message.startswith(account):
        return ""
    return escape(prefix(account=account))


class Printer:
    """Writes lines, tables and groups in the mode it was made for."""

    def __init__(self, mode: Mode | None = None, *, stderr: bool = False) -> None:
        self.mode = mode or detect()
        self.stderr = stderr
        self.console = console(self.mode, stderr=stderr)

    def line(self, markup: str = "", *, unit: str | None = None, account: str | None = None) -> None:
        """One line; `unit`/`account` go in front (escaped), the rest is rich markup."""
        text = escape(prefix(unit, account)) + markup
        if self.mode.plain:
            click.echo(plain_text(text), err=self.stderr)
        else:
            self.console.print(text)

    def table(self, table: Table) -> None:
        """A rich table on a terminal; aligned plain text that never wraps otherwise."""
        if self.mode.plain:
            for text in table.plain_lines():
                click.echo(text, err=self.stderr)
        else:
            self.console.print(table.to_rich())

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        """A foldable group in a GitHub Actions log (a titled block elsewhere)."""
        if self.mode.github:
            click.echo(f"::group::{workflow_escape(title)}", err=self.stderr)
            try:
                yield
            finally:
                click.echo("::endgroup::", err=self.stderr)
        else:
            yield


@dataclass
class Table:
    """A table the CLI shows: `columns` are names, `right` those right-aligned; cells may hold
    rich markup (styles are dropped in plain mode)."""

    columns: Sequence[str]
    title: str | None = None
    right: Sequence[str] = ()
    no_wrap: Sequence[str] = ()  # on a terminal too (ids a reader copies)
    rows: list[Sequence[str]] = field(default_factory=list)

    def add_row(self, *cells: str) -> None:
        self.rows.append(cells)

    def to_rich(self) -> RichTable:
        from rich.table import Table as RichTable  # noqa: PLC0415 - see TYPE_CHECKING above

        table = RichTable(title=self.title, title_justify="left")
        for name in self.columns:
            table.add_column(
                name, justify="right" if name in self.right else "left", no_wrap=name in self.no_wrap
            )
        for row in self.rows:
            table.add_row(*row)
        return table

    def plain_lines(self) -> list[str]:
        """The title, the header and one line per row, columns padded to their widest cell."""
        rows = [list(self.columns), *([plain_text(c) for c in row] for row in self.rows)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.columns))]
        lines = [self.title] if self.title else []
        for row in rows:
            cells = [
                cell.rjust(width) if name in self.right else cell.ljust(width)
                for cell, width, name in zip(row, widths, self.columns, strict=True)
            ]
            lines.append("  ".join(cells).rstrip())
        return lines

    def markdown(self) -> str:
        """The table in GitHub-flavoured markdown (a job summary, a pull request comment)."""

        def cell(text: str) -> str:
            return plain_text(text).replace("|", "\\|") or " "

        lines = [f"### {self.title}", ""] if self.title else []
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("| " + " | ".join("---:" if c in self.right else "---" for c in self.columns) + " |")
        lines.extend("| " + " | ".join(cell(c) for c in row) + " |" for row in self.rows)
        return "\n".join(lines) + "\n"


# -- GitHub Actions workflow commands ------------------------------------------------------------
def workflow_escape(text: str) -> str:
    """A workflow command's message: %, CR and LF escaped as GitHub reads them."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property_escape(text: str) -> str:
    return workflow_escape(text).replace(":", "%3A").replace(",", "%2C")


def error_annotation(
    message: str,
    *,
    path: str | None = None,
    line: int | None = None,
    column: int | None = None,
    bases: Sequence[str | Path] = (),
    workspace: str | Path | None = None,
) -> str:
    """`::error file=…,line=…::message`: `path` is looked up under each of `bases` (the folders
    the command was given; the error names files relative to the live repo) and written
    relative to `workspace` (GITHUB_WORKSPACE, else the current folder), as GitHub wants."""
    properties = ["title=refarch"]
    if path:
        workspace = Path(workspace or os.environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()
        candidates = [Path(path)] if Path(path).is_absolute() else [Path(b) / path for b in (*bases, ".")]
        found = next((c.resolve() for c in candidates if c.exists()), Path(path))
        try:
            shown = found.relative_to(workspace).as_posix() if found.is_absolute() else found.as_posix()
        except ValueError:
            shown = found.as_posix()
        properties.insert(0, f"file={_property_escape(shown)}")
        if line:
            properties.insert(1, f"line={line}")
            if column:
                properties.insert(2, f"col={column}")
    return f"::error {','.join(properties)}::{workflow_escape(message)}"


def annotation_for(exc: Exception, argv: Sequence[str] = ()) -> str:
    """The `::error` annotation for an error at the CLI's boundary: on the file and line a
    configuration error names, looked up under the folders given on the command line."""
    folders = [a for a in argv if Path(a).is_dir()]
    path, line, column = (getattr(exc, name, None) for name in ("path", "line", "column"))
    return error_annotation(str(exc), path=path, line=line, column=column, bases=folders)


def step_summary_path(env: Mapping[str, str] | None = None) -> Path | None:
    """GitHub's job summary file ($GITHUB_STEP_SUMMARY), when there is one."""
    value = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    return Path(value) if value else None
