"""`refarch recover` as a library: push the Terraform state a run moved aside back to its backends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from refarch.events import RunEventCallback
from refarch.runner.run import Pushed, load_plan, recover
from refarch.settings import with_terraform_binary

__all__ = ["Pushed", "RecoverRequest", "RecoverResult", "run_recover"]


@dataclass(frozen=True)
class RecoverRequest:
    """What `refarch recover DIR` is asked, one field per flag."""

    directory: str | Path
    run: str = "last"  # --run last|RUN_ID: the run whose state to push
    units: tuple[str, ...] = ()  # --unit: only these units (all the run moved aside when empty)
    endpoint_url: str | None = None
    profile: str | None = None
    tf_path: str | None = None  # the Terraform binary, over `[engine] terraform_binary`


@dataclass(frozen=True)
class RecoverResult:
    """Each state file pushed back (or not); empty when the run moved nothing aside."""

    run: str
    pushed: tuple[Pushed, ...]

    @property
    def exit_code(self) -> int:
        return 0 if all(p.ok for p in self.pushed) else 1


def run_recover(request: RecoverRequest, *, on_event: RunEventCallback | None = None) -> RecoverResult:
    """What `refarch recover DIR` does: `terraform state push` of each file run `request.run`
    kept in .refarch/recovery/ (only `request.units` when given), oldest first."""
    plan = load_plan(
        request.directory,
        "apply",
        include=request.units,
        ignore_dependencies=True,
        endpoint_url=request.endpoint_url,
        profile=request.profile,
    )
    settings = with_terraform_binary(plan.repo.settings, request.tf_path)
    return RecoverResult(request.run, tuple(recover(plan, request.run, settings, on_event=on_event)))
