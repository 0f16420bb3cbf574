"""`--changed-since REF` for graph, plan, plan-all, apply and ci: the option and its notices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from refarch import graph
from refarch.changes import DEPLOYED, ChangeSet, changes_since, selection
from refarch.cli import output
from refarch.cli.output import escape
from refarch.models import Repo
from refarch.repo import load_repo

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


def narrow(
    repo: Repo, ref: str, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[ChangeSet, list[str], list[str]]:
    """The change since `ref` and the include/exclude patterns (to use with
    --ignore-dependencies) selecting its units, within the user's own --include."""
    if ref == DEPLOYED:  # reads the ledger: boto3 is loaded only for it (`refarch graph` stays light)
        from refarch.jobs.deployed import changes_since_deployed  # noqa: PLC0415

        change = changes_since_deployed(repo)
    else:
        change = changes_since(repo, ref)
    report(change)
    wanted, nested = selection(change, repo)
    if include:
        wanted = [p for p in wanted if graph.matches(p, include)]
    return change, wanted, [*exclude, *nested]


def narrow_run_options(directory: str, opts: dict[str, Any]) -> dict[str, Any] | None:
    """A run verb's options narrowed to what changed; None when nothing did."""
    _, include, exclude = narrow(
        load_repo(directory), opts["changed_since"], opts["include"], opts["exclude"]
    )
    if not include:
        message = f"nothing changed since {opts['changed_since']}: no unit to run"
        click.echo(message, err=True)
        summary = output.step_summary_path() if output.detect().github else None
        if summary is not None:
            with summary.open("a", encoding="utf-8") as handle:
                handle.write(f"refarch: {message}\n")
        return None
    return {**opts, "include": tuple(include), "exclude": tuple(exclude), "ignore_dependencies": True}
