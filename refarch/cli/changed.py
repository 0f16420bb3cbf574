"""`--changed-since REF` for graph, plan, plan-all, apply and ci: the option and its notices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from refarch.changes import ChangeSet
from refarch.cli import output
from refarch.cli.output import escape

F = TypeVar("F", bound=Callable[..., Any])


def option(function: F) -> F:
    """The `--changed-since REF` option."""
    return click.option(
        "--changed-since",
        metavar="REF",
        callback=_not_blank,
        help="Only the units whose files, or anything they read, changed in git since REF "
        "(from its merge base with HEAD), and their dependents; their dependencies are taken "
        "as applied. A unit deleted since REF is reported, never destroyed. `deployed`: the "
        "units whose configuration differs from their last successful apply in the ledger.",
    )(function)


def _not_blank(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An empty REF (`--changed-since "$VAR"` with VAR unset) is an error, never "everything"."""
    if value is not None and not value.strip():
        raise click.BadParameter("an empty git ref: name one, e.g. origin/main (is a CI variable empty?)")
    return value


def report(change: ChangeSet) -> None:
    """On stderr (stdout may be JSON): what changed, and what needs a destroy by hand."""
    out = output.Printer(stderr=True)
    out.line(
        escape(
            f"changed since {change.ref}: {len(change.files)} file(s); {len(change.changed)} unit(s) "
            f"changed, {len(change.dependents)} dependent(s)"
        )
    )
    for unit in change.deleted:
        advice = f"run `refarch destroy` on it from a checkout of {change.ref}; refarch never does"
        out.line(f"[yellow]deleted: needs a destroy[/] ({escape(advice)})", unit=unit)
        if out.mode.github:
            text = f"{unit} was deleted since {change.ref} and needs a destroy: {advice}"
            click.echo(f"::warning title=refarch::{output.workflow_escape(text)}")


def nothing_changed(message: str) -> None:
    """Nothing changed since the ref: said on stderr, and in the GitHub job summary."""
    click.echo(message, err=True)
    summary = output.step_summary_path() if output.detect().github else None
    if summary is not None:
        with summary.open("a", encoding="utf-8") as handle:
            handle.write(f"refarch: {message}\n")
