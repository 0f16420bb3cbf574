"""`refarch ci github|gitlab DIR` as a library: the pipeline files for a live repo, written
(or only returned) as the flags say. `refarch.ci` holds the pipeline model and the emitters;
this job decides what goes in (settings and flags, the ledger check, --changed-since)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from refarch import ci, graph
from refarch.changes import git_toplevel
from refarch.jobs.changed import changed_selection
from refarch.jobs.notices import ChangesFound, NothingToRun, Warned, warn
from refarch.models import Repo
from refarch.repo import load_repo
from refarch.settings import declared_terraform_version

CiEvent = Warned | ChangesFound | NothingToRun
CiEventCallback = Callable[[CiEvent], None]


@dataclass(frozen=True)
class CiRequest:
    """The pipeline to emit, as the flags of `refarch ci SYSTEM DIR` say it (None: the
    repo's `[ci]` setting, else refarch's default)."""

    system: str  # github | gitlab
    directory: str | Path
    out: Path | None = None  # default: the root of DIRECTORY's git repository
    write: bool = True  # False: only return the files (--stdout)
    force: bool = False  # replace files refarch did not generate
    branch: str | None = None
    granularity: str = "auto"
    engine: str = "terraform"
    terraform_version: str | None = None
    terraform_sha256: str | None = None
    terragrunt_sha256: str | None = None
    role_variable: str = ci.CiOptions.role_variable
    plan_role_variable: str = ci.CiOptions.plan_role_variable
    region: str | None = None
    install: str | None = None
    install_sha256: str | None = None
    allow_local_ledger: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    parallelism: int = 4
    changed_since: str | None = None


@dataclass(frozen=True)
class CiResult:
    """The pipeline and its files (path relative to the git root -> YAML); `written`: where
    they went (empty with `write=False`, or when there was nothing to emit). For GitLab, the
    API calls to make once with a maintainer's token."""

    pipeline: ci.CiPipeline | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    written: tuple[Path, ...] = ()
    resource_group_calls: tuple[str, ...] = ()
    drift_schedule_call: str | None = None


def emit_ci(request: CiRequest, *, on_event: CiEventCallback | None = None) -> CiResult:
    """What `refarch ci SYSTEM DIR` does: a pull request job that plans what changed, and
    apply jobs, one per account (or tier), whose needs mirror the account tiers and the
    cross-account dependencies; with [ci] drift_schedule, a scheduled drift job per account."""
    emit: CiEventCallback = on_event or (lambda event: None)
    repo = load_repo(request.directory, touches_aws=False)
    warn(repo.warnings, emit)
    top = (git_toplevel(repo.root) or Path.cwd()).resolve()
    if not request.allow_local_ledger:
        ci.check_ledger(repo)
    options = ci_options(repo, request)
    selection = list(request.include)
    if request.changed_since:
        selection, options = _changed(repo, request, options, emit)
        if not selection:
            message = f"nothing changed since {request.changed_since}: no pipeline to emit"
            emit(NothingToRun("changed", message))
            return CiResult()
    where = Path(os.path.relpath(repo.root, top)).as_posix()  # as the jobs see it
    model = ci.build(repo, options, directory=where, include=selection, changed_since=request.changed_since)
    warn(model.warnings, emit)
    if not model.jobs:
        emit(NothingToRun("selection", "no unit selected: no pipeline to emit"))
        return CiResult(model)
    files = ci.render(model, request.system)
    written = ci.write_files(request.out or top, files, force=request.force) if request.write else []
    gitlab = request.system == "gitlab"
    return CiResult(
        model,
        files,
        tuple(written),
        tuple(ci.resource_group_calls(model)) if gitlab else (),
        ci.drift_schedule_call(model) if gitlab else None,
    )


def ci_options(repo: Repo, request: CiRequest) -> ci.CiOptions:
    """The repo's `[ci]` with the request's values on top."""
    return ci.CiOptions.from_settings(
        repo.settings.ci,
        declared_terraform_version(repo.settings),
        branch=request.branch,
        engine=request.engine,
        terraform_version=request.terraform_version,
        terraform_sha256=request.terraform_sha256,
        terragrunt_sha256=request.terragrunt_sha256,
        role_variable=request.role_variable,
        plan_role_variable=request.plan_role_variable,
        region=request.region or repo.settings.region,
        parallelism=request.parallelism,
        granularity=request.granularity,
        exclude=request.exclude,
        install=request.install,
        install_sha256=request.install_sha256,
    )


def _changed(
    repo: Repo, request: CiRequest, options: ci.CiOptions, emit: CiEventCallback
) -> tuple[list[str], ci.CiOptions]:
    """--changed-since: the changed units within --include, and the options leaving out the
    units nested below them. The planner sees the changed units only, so each of the user's
    patterns is checked here."""
    unmatched = [p for p in request.include if not any(graph.matches(u, [p]) for u in repo.units)]
    warn([f"--include {p} matches no unit" for p in unmatched], emit)
    ref = str(request.changed_since)
    change, selection, nested = changed_selection(repo, ref, request.include, request.exclude)
    emit(ChangesFound(change))
    return selection, replace(options, exclude=tuple(nested))
