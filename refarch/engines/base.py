"""What an engine is: the contract the runner speaks, one unit and one action at a time.

An engine turns one unit + one action into processes. The runner (scheduler, retries,
ledger) never knows which engine runs; engines never know about AWS sessions: the runner
hands them the complete child environment, credentials included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from refarch.engines.plan_file import PlanChanges
from refarch.exec.process import Interrupt, LineCallback, ProcessResult
from refarch.models import Repo, Unit

ACTIONS = ("apply", "plan", "destroy", "output")


@dataclass(frozen=True)
class UnitJob:
    """Everything an engine needs to run one action on one unit, once (one attempt)."""

    unit: Unit
    action: str  # "apply" | "plan" | "destroy" | "output"
    repo: Repo
    work_root: Path  # <repo root>/.refarch/work
    # The COMPLETE child environment, incl. the AWS credentials of the unit's account and
    # AWS_ENDPOINT_URL if any. Engines add to a copy of it, never read os.environ.
    env: Mapping[str, str]
    dependency_outputs: Mapping[str, Mapping[str, Any]]  # by dependency block name
    # The runner's masked log of this unit. `on_line` already writes every line there
    # (secrets masked), so engines pass `on_line` to run_process and NOT `log_path`:
    # raw output must never reach the disk. Engines may read log_path, never write it.
    log_path: Path
    on_line: LineCallback
    interrupt: Interrupt
    source_override: Path | None = None
    endpoint_url: str | None = None
    refresh_modules: bool = False  # a retry remedy: TERRAGRUNT_SOURCE_UPDATE / init -upgrade
    lock_timeout: str | None = None  # e.g. "5m": how long terraform waits for a state lock
    # Saved plans: with "plan", write the plan to this file (`-out`, an absolute path) and
    # report what it changes (EngineResult.plan); with "apply", apply exactly this plan file
    # (`terraform apply PLANFILE`: no new plan).
    plan_file: Path | None = None


@dataclass(frozen=True)
class EngineResult:
    """How one attempt ended."""

    process: ProcessResult  # the failing step, or the last step
    outputs: Mapping[str, Any] | None  # the unit's outputs after a successful apply, if read
    plan: PlanChanges | None = None  # what the saved plan changes (a plan with job.plan_file)
    # The saved plan's `terraform show -json` document: in memory only (its values can be
    # secrets), for the plan's checks (policy, drift); never logged or written as it is.
    document: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)


def stdout_kept(on_line: LineCallback, lines: list[str]) -> LineCallback:
    """A line callback that keeps stdout in `lines` (in memory only: `output -json` and
    `show -json` print every value, secrets included) and passes stderr on to `on_line`."""

    def keep(stream: str, line: str) -> None:
        if stream == "stdout":
            lines.append(line)
        else:
            on_line(stream, line)

    return keep


class Engine(Protocol):
    """Runs units. `execute` is one attempt; retries and ordering belong to the runner.

    An engine class may set `resolves_dependencies = True` (terragrunt does: it reads its
    dependencies' outputs itself); the runner then leaves `dependency_outputs` empty and
    never calls `read_outputs` for it.
    """

    name: str

    def execute(self, job: UnitJob) -> EngineResult:
        """Run `job.action` on `job.unit` once; never raise for a tool's non-zero exit."""
        ...

    def read_outputs(self, job: UnitJob) -> Mapping[str, Any]:
        """The outputs of a unit that this run did not apply (a dependency left out)."""
        ...

    def state_files(self, job: UnitJob) -> list[Path]:
        """State files Terraform left in the unit's working folders (errored.tfstate after a
        failed save): the runner moves them aside before anything could delete them."""
        ...

    def terraform_command(self, job: UnitJob, args: Sequence[str]) -> ProcessResult:
        """Any other Terraform command on the unit, through its backend (`state push FILE`,
        `force-unlock -force ID`): what recovery and lock release run."""
        ...


# Terraform's (and OpenTofu's) closing line of apply, destroy and plan.
_APPLIED = re.compile(
    r"(?:Apply|Destroy) complete! Resources: (?:(?P<imported>\d+) imported, )?"
    r"(?:(?P<add>\d+) added, (?P<change>\d+) changed, )?(?P<destroy>\d+) destroyed"
)
_PLANNED = re.compile(
    r"Plan: (?:\d+ to import, )?(?P<add>\d+) to add, (?P<change>\d+) to change, (?P<destroy>\d+) to destroy"
)
_NO_CHANGES = re.compile(r"No changes\.")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def resource_changes(output: str) -> dict[str, int] | None:
    """What an apply, destroy or plan changed, from Terraform's last summary line in
    `output`: {"add", "change", "destroy"}; None when the output has none (another tool)."""
    text = _ANSI.sub("", output)
    found = None
    for pattern in (_APPLIED, _PLANNED):
        for match in pattern.finditer(text):
            if found is None or match.start() > found.start():
                found = match
    if found is not None:
        return {k: int(found.group(k) or 0) for k in ("add", "change", "destroy")}
    if _NO_CHANGES.search(text):
        return {"add": 0, "change": 0, "destroy": 0}
    return None
