"""The notes a job sends before its result, shared by the verbs: stacks generated, warnings,
what changed, nothing to do. Light to import: `refarch graph` loads this module."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from refarch.changes import ChangeSet
from refarch.config.stacks import StacksResult
from refarch.jobs.stacks import generate_stacks


@dataclass(frozen=True)
class StacksGenerated:
    """The stacks were generated before the repo was read."""

    result: StacksResult


@dataclass(frozen=True)
class ChangesFound:
    """--changed-since: what changed, before the job narrows to it."""

    change: ChangeSet


@dataclass(frozen=True)
class NothingToRun:
    """The job ends here, successfully: nothing was selected (`reason`: planned, changed or
    selection)."""

    reason: str
    message: str


@dataclass(frozen=True)
class Warned:
    """Warnings about the repo, the selection or the result (each one line)."""

    messages: tuple[str, ...]


Notice = StacksGenerated | ChangesFound | NothingToRun | Warned


def stacks_first(directory: str | Path, generate: bool, emit: Callable[[StacksGenerated], None]) -> None:
    """Generate the stacks below `directory` before it is read, as `terragrunt run --all`
    does (unless `generate` is False: --no-stack-generate / TG_NO_STACK_GENERATE)."""
    if generate:
        emit(StacksGenerated(generate_stacks(directory)))


def warn(messages: Iterable[str], emit: Callable[[Warned], None]) -> None:
    """Send the warnings, if there are any."""
    found = tuple(messages)
    if found:
        emit(Warned(found))
