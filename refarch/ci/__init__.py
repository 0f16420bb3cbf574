"""A live repo as a CI pipeline: the model (model.py), then one emitter per CI system.

`pipeline(plan, directory, options)` slices an apply plan into jobs (and, with `[ci]
drift_schedule`, one scheduled drift job per account); `github_workflows()` and
`gitlab_pipeline()` lay it out as files; `generate()` does both from a Repo and its `[ci]`.
"""

from __future__ import annotations

from collections.abc import Sequence

from refarch.ci.emit import GENERATED_MARK, HEADER, to_yaml, write_files
from refarch.ci.github import (
    ACTIONS,
    GITHUB_APPLY_FILE,
    GITHUB_DRIFT_FILE,
    GITHUB_PLAN_FILE,
    github_workflows,
)
from refarch.ci.gitlab import GITLAB_FILE, drift_schedule_call, gitlab_pipeline, resource_group_calls
from refarch.ci.model import (
    GRANULARITIES,
    PLANS,
    REPORTS,
    SYSTEMS,
    CiDriftJob,
    CiJob,
    CiOptions,
    CiPipeline,
    pipeline,
)
from refarch.errors import UsageError
from refarch.models import Repo
from refarch.planner import plan as make_plan
from refarch.settings import declared_terraform_version

__all__ = [
    "ACTIONS",
    "GENERATED_MARK",
    "GITHUB_APPLY_FILE",
    "GITHUB_DRIFT_FILE",
    "GITHUB_PLAN_FILE",
    "GITLAB_FILE",
    "GRANULARITIES",
    "HEADER",
    "PLANS",
    "REPORTS",
    "SYSTEMS",
    "CiDriftJob",
    "CiJob",
    "CiOptions",
    "CiPipeline",
    "build",
    "check_ledger",
    "drift_schedule_call",
    "generate",
    "github_workflows",
    "gitlab_pipeline",
    "pipeline",
    "render",
    "resource_group_calls",
    "to_yaml",
    "write_files",
]


def render(pipeline: CiPipeline, system: str) -> dict[str, str]:
    """The files of `system` (github | gitlab): path relative to the git root -> YAML text."""
    if system == "github":
        return github_workflows(pipeline)
    if system == "gitlab":
        return gitlab_pipeline(pipeline)
    raise UsageError(f"unknown CI system {system!r}", hint=f"use one of {', '.join(SYSTEMS)}")


def check_ledger(repo: Repo) -> None:
    """A retry in CI continues its job's run and frees its locks only with the shared ledger."""
    if repo.settings.ledger.backend != "dynamodb":
        raise UsageError(
            f"CI jobs need the shared ledger: [ledger] in {repo.settings.path or 'refarch.toml'} is local",
            hint='add [ledger] backend = "dynamodb" to refarch.toml and run `refarch bootstrap DIR '
            '--only ledger` (see "Shared history"); --allow-local-ledger emits anyway, but a '
            "retried job then cannot find its run or free its locks",
        )


def build(
    repo: Repo,
    options: CiOptions | None = None,
    *,
    directory: str = ".",
    include: Sequence[str] = (),
    changed_since: str | None = None,
) -> CiPipeline:
    """The pipeline model of `repo`: `options` default to the repo's `[ci]`; `directory` is
    the live repo as seen from the git root; `include` narrows the pipeline to those units
    (their dependencies taken as applied)."""
    options = options or CiOptions.from_settings(
        repo.settings.ci, declared_terraform_version(repo.settings), region=repo.settings.region
    )
    plan = make_plan(
        repo, "apply", include=include, exclude=options.exclude, ignore_dependencies=bool(include)
    )
    return pipeline(plan, directory, options, changed_since)


def generate(
    repo: Repo,
    system: str,
    options: CiOptions | None = None,
    *,
    directory: str = ".",
    include: Sequence[str] = (),
    changed_since: str | None = None,
) -> dict[str, str]:
    """The pipeline files for `repo` (path relative to the git root -> YAML); see build()."""
    model = build(repo, options, directory=directory, include=include, changed_since=changed_since)
    return render(model, system)
