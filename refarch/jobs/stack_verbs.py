"""`refarch stack generate|clean|output DIR` as a library (`stack run ACTION` is `deploy`
with that action: it generates the stacks first, as every run verb does)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from refarch.config.stacks import StacksResult
from refarch.exec.process import Interrupt
from refarch.jobs.deploy import ConsentCallback, DeployEventCallback, DeployRequest, DeployResult, deploy
from refarch.jobs.stacks import clean_stacks, generate_stacks, lookup, stack_outputs


@dataclass(frozen=True)
class StackRequest:
    """`refarch stack generate|clean DIR`."""

    directory: str | Path


def stack_generate(request: StackRequest) -> StacksResult:
    """Generate every terragrunt.stack.hcl below DIR into its .terragrunt-stack folder (nested
    stacks too), as `terragrunt stack generate` does; an unchanged stack is not rewritten."""
    return generate_stacks(request.directory)


@dataclass(frozen=True)
class StackCleanResult:
    """The .terragrunt-stack folders deleted."""

    deleted: tuple[Path, ...]


def stack_clean(request: StackRequest) -> StackCleanResult:
    """Delete every .terragrunt-stack folder below DIR, as `terragrunt stack clean` does."""
    return StackCleanResult(tuple(clean_stacks(request.directory)))


@dataclass(frozen=True)
class StackOutputRequest:
    """`refarch stack output DIR [KEY]`: the run (its action is output) and the key asked."""

    run: DeployRequest
    key: str | None = None  # `unit` or `unit.output` (a nested stack's `stack.unit.output`)


@dataclass(frozen=True)
class StackOutputResult(DeployResult):
    """The output run, and its outputs by the stack's unit names (nested stacks nested)."""

    outputs: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None

    def selected(self) -> dict[str, Any]:
        """What `stack output [KEY]` shows: every output, or {KEY: its value} (UsageError
        when the stack has no such output)."""
        if self.key is None:
            return dict(self.outputs)
        return {self.key: lookup(self.outputs, self.key)}


def stack_output(
    request: StackOutputRequest,
    *,
    confirm: ConsentCallback | None = None,
    on_event: DeployEventCallback | None = None,
    interrupt: Interrupt | None = None,
) -> StackOutputResult:
    """Run `output` on the stack's units and aggregate their outputs as `terragrunt stack
    output` does: {"app": {...}, "nested": {"db": {...}}}."""
    run = replace(request.run, action="output")
    result = deploy(run, confirm=confirm, on_event=on_event, interrupt=interrupt)
    outputs = {} if result.report is None else stack_outputs(run.directory, result.report.outputs)
    return StackOutputResult(
        result.plan, result.report, outputs, request.key, report_not_written=result.report_not_written
    )
