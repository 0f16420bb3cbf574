"""The verbs that read a live repo and change nothing: `refarch graph`, `refarch plan`,
`refarch validate` and `refarch config show`, each a typed request in, a typed result out.

Light to import (no boto3, networkx or HCL parser): a warm `refarch graph` reads the
discovery cache only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refarch import graph
from refarch.changes import subrepo
from refarch.jobs.changed import changed_selection
from refarch.jobs.notices import ChangesFound, NothingToRun, Notice, stacks_first, warn
from refarch.models import Plan, Repo
from refarch.repo import load_repo
from refarch.settings import EffectiveSetting, effective, load_settings

if TYPE_CHECKING:
    from refarch.validate import ValidationReport

NoticeCallback = Callable[[Notice], None]
GRAPH_FORMATS = ("json", "dot", "mermaid")
CONFIG_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RepoReading:
    """How a verb reads the live repo: the flags of repo_options, --no-cache, --changed-since
    (keyword-only, after each request's own fields)."""

    directory: str | Path
    _: KW_ONLY
    changed_since: str | None = None  # a git ref, or `deployed`
    hidden: bool = True  # look for units in hidden folders
    excludes_file: Path | None = None  # --queue-excludes-file
    features: Mapping[str, str] = field(default_factory=dict)  # --feature NAME=VALUE
    generate_stacks: bool = True  # generate terragrunt.stack.hcl files first
    cache: bool = True  # use .refarch/cache


def _read(request: RepoReading, emit: NoticeCallback) -> Repo:
    """Stacks generated first, then the repo read without touching AWS; its warnings sent."""
    stacks_first(request.directory, request.generate_stacks, emit)
    repo = load_repo(
        request.directory,
        cache=request.cache,
        touches_aws=False,
        hidden=request.hidden,
        excludes_file=request.excludes_file,
        features=dict(request.features),
    )
    warn(repo.warnings, emit)
    return repo


# -- graph -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GraphRequest(RepoReading):
    """`refarch graph DIR`: the units and their dependency edges (with changed_since, only
    the changed units and their dependents)."""

    format: str = "json"  # json | dot | mermaid
    queue_include_external: bool | None = None  # False: leave dependencies outside DIR out


@dataclass(frozen=True)
class GraphResult:
    """The repo as graphed, and the text `refarch graph` prints (JSON, DOT or Mermaid)."""

    repo: Repo
    text: str

    def to_json(self) -> dict[str, object]:
        return graph.to_json(self.repo)


def repo_graph(request: GraphRequest, *, on_event: NoticeCallback | None = None) -> GraphResult:
    """Every unit of the live repo and its dependency edges (DOT edges point dependent ->
    dependency, as Terragrunt's); dependencies outside DIR are marked external."""
    emit: NoticeCallback = on_event or (lambda event: None)
    repo = _read(request, emit)
    if request.queue_include_external is False:
        repo = graph.without_external(repo)
    if request.changed_since:  # only the changed units and their dependents, edges among them
        change, wanted, _ = changed_selection(repo, request.changed_since)
        emit(ChangesFound(change))
        repo = subrepo(repo, wanted)
    if request.format == "dot":
        return GraphResult(repo, graph.to_dot(repo))
    if request.format == "mermaid":
        return GraphResult(repo, graph.to_mermaid(repo))
    return GraphResult(repo, json.dumps(graph.to_json(repo), indent=2) + "\n")


# -- plan --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanRequest(RepoReading):
    """`refarch plan DIR`: the deployment order of the selected units for `action`."""

    action: str = "apply"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ignore_dependencies: bool = False
    with_dependencies: bool = False
    queue_include_external: bool = False


@dataclass(frozen=True)
class PlanResult:
    """The plan; None when --changed-since found nothing changed."""

    plan: Plan | None


def plan_repo(request: PlanRequest, *, on_event: NoticeCallback | None = None) -> PlanResult:
    """The order in which the selected units deploy: account tiers first, then dependencies;
    each group may run in parallel (`refarch.plan` on a Repo, with the CLI's selection)."""
    from refarch.planner import plan  # noqa: PLC0415 - a warm `refarch graph` does without it

    emit: NoticeCallback = on_event or (lambda event: None)
    repo = _read(request, emit)
    include, exclude, ignore = request.include, request.exclude, request.ignore_dependencies
    if request.changed_since:
        change, wanted, nested = changed_selection(repo, request.changed_since, include, exclude)
        emit(ChangesFound(change))
        if not wanted:
            emit(NothingToRun("changed", f"nothing changed since {request.changed_since}: no unit selected"))
            return PlanResult(None)
        include, exclude, ignore = tuple(wanted), tuple(nested), True
    result = plan(
        repo,
        request.action,
        include=include,
        exclude=exclude,
        ignore_dependencies=ignore,
        queue_include_external=request.queue_include_external,
        with_dependencies=request.with_dependencies,
    )
    warn(result.warnings, emit)
    return PlanResult(result)


# -- validate ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidateRequest:
    """`refarch validate DIR`."""

    directory: str | Path


@dataclass(frozen=True)
class ValidateResult:
    """The mismatches of units against their local modules; exit code 2 when there are any."""

    report: ValidationReport

    @property
    def exit_code(self) -> int:
        return 0 if self.report.ok else 2


def validate_live(request: ValidateRequest, *, on_event: NoticeCallback | None = None) -> ValidateResult:
    """Check every unit whose module is local: inputs against the module's variables (unknown
    names, required ones missing) and dependency.X.outputs.Y against X's module outputs."""
    from refarch.validate import validate_repo  # noqa: PLC0415 - a warm `refarch graph` does without it

    report = validate_repo(request.directory)
    warn(report.warnings, on_event or (lambda event: None))
    return ValidateResult(report)


# -- config show -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigRequest:
    """`refarch config show DIR`, with the flags that override settings."""

    directory: str | Path
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class ConfigResult:
    """Every setting with its effective value and source, and the Terraform the runs use."""

    path: str | None  # the refarch.toml read, if any
    settings: tuple[EffectiveSetting, ...]
    terraform: Mapping[str, str]  # path, version, source

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": CONFIG_SCHEMA_VERSION,
            "path": self.path,
            "settings": [row.to_json() for row in self.settings],
            "terraform": dict(self.terraform),
        }


def show_config(request: ConfigRequest) -> ConfigResult:
    """The effective settings of the live repo: defaults, refarch.toml (with the line),
    bootstrap.hcl, environment or flag."""
    from refarch.engines.terraform import resolve_terraform  # noqa: PLC0415 - only when run
    from refarch.provision.declared import with_declared  # noqa: PLC0415 - evaluator only when run

    root = Path(request.directory)
    settings = load_settings(root).with_overrides(
        endpoint_url=request.endpoint_url, region=request.region, profile=request.profile
    )
    rows = effective(with_declared(root, settings))
    terraform = resolve_terraform(settings).with_version()  # what the runs will use
    path = None if settings.path is None else str(settings.path)
    return ConfigResult(path, tuple(rows), terraform.to_json())
