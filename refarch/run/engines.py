"""What an engine is (the contract the runner speaks), and the terragrunt engine.

An engine turns one unit + one action into processes. The runner (scheduler, retries,
ledger) never knows which engine runs; engines never know about AWS sessions: the runner
hands them the complete child environment, credentials included.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from refarch.errors import ConfigError, ProcessFailed, ToolNotFound, UsageError
from refarch.models import Repo, Unit
from refarch.run.process import (
    Interrupt,
    LineCallback,
    ProcessResult,
    capture,
    run_process,
)
from refarch.run.workdir import unit_slug
from refarch.settings import Settings

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


@dataclass(frozen=True)
class EngineResult:
    """How one attempt ended."""

    process: ProcessResult  # the failing step, or the last step
    outputs: Mapping[str, Any] | None  # the unit's outputs after a successful apply, if read


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


# -- terragrunt -------------------------------------------------------------------------------
ENGINES = ("terragrunt", "terraform")
LEGACY = "legacy"  # before 0.73: `--terragrunt-*` flags, `TERRAGRUNT_*` variables
MODERN = "modern"  # 0.73 and 1.x: `run [flags] -- <cmd>`, unprefixed flags, `TG_*` variables
# The first release that accepts the redesigned CLI (terragrunt v0.73.0 release notes); the
# old names were removed before 1.0, so from here on we speak only the new ones.
MODERN_SINCE = (0, 73, 0)
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Dialect:
    """How one Terragrunt generation spells the same request."""

    name: str
    non_interactive: tuple[str, ...]
    source_flag: str
    iam_role_flag: str
    env_prefix: str
    download_dir_env: str

    def argv(self, binary: str, terraform_args: Sequence[str], flags: Sequence[str]) -> list[str]:
        """The whole command line: terragrunt's own flags, then the terraform command."""
        if self.name == MODERN:
            return [binary, "run", *self.non_interactive, *flags, "--", *terraform_args]
        return [binary, *terraform_args, *self.non_interactive, *flags]


DIALECTS = {
    LEGACY: Dialect(
        LEGACY,
        ("--terragrunt-non-interactive",),
        "--terragrunt-source",
        "--terragrunt-iam-role",
        "TERRAGRUNT_",
        "TERRAGRUNT_DOWNLOAD",
    ),
    MODERN: Dialect(
        MODERN, ("--non-interactive",), "--source", "--iam-assume-role", "TG_", "TG_DOWNLOAD_DIR"
    ),
}


def dialect_of(version_text: str) -> Dialect:
    """The dialect of `terragrunt --version` output ("terragrunt version v0.67.16")."""
    match = _VERSION.search(version_text)
    if match is None:
        raise ToolNotFound(
            "terragrunt",
            hint=f"`terragrunt --version` printed {version_text.strip()[:80]!r}, not a version; "
            "set [engine] terragrunt_binary in refarch.toml",
        )
    version = tuple(int(part) for part in match.groups())
    return DIALECTS[MODERN if version >= MODERN_SINCE else LEGACY]


TERRAFORM_ARGS = {
    "apply": ("apply", "-auto-approve", "-input=false", "-no-color"),
    "plan": ("plan", "-input=false", "-no-color"),
    "destroy": ("destroy", "-auto-approve", "-input=false", "-no-color"),
    "output": ("output", "-json", "-no-color"),
}


class TerragruntEngine:
    """Runs `terragrunt <cmd>` in the unit's folder, non-interactively, in either dialect.

    The runner has already assumed the account's role: the credentials are in `job.env`.
    The unit's `iam_role` is still passed through (as Terragrunt users expect; Terragrunt
    assumes it from those credentials) unless `[engine] terragrunt_pass_iam_role = false`.
    Terragrunt reads its dependencies' outputs itself, so the runner hands it none.
    """

    name = "terragrunt"
    resolves_dependencies = True

    def __init__(
        self, settings: Settings | None = None, *, binary: str | None = None, dialect: str | None = None
    ) -> None:
        section = settings.section("engine") if settings is not None else {}
        self.binary = binary or str(section.get("terragrunt_binary", "terragrunt"))
        self.pass_iam_role = bool(section.get("terragrunt_pass_iam_role", True))
        forced = dialect or section.get("terragrunt_dialect")
        if forced is not None and forced not in DIALECTS:
            raise ConfigError(
                f"[engine] terragrunt_dialect must be one of {sorted(DIALECTS)}",
                path=settings.path if settings else None,
            )
        self._dialect: Dialect | None = DIALECTS[forced] if forced else None
        self._lock = threading.Lock()

    def dialect(self, env: Mapping[str, str], cwd: Path) -> Dialect:
        """Detected once from `terragrunt --version` (the probe runs with the job's env)."""
        with self._lock:
            if self._dialect is None:
                probe = capture([self.binary, "--version"], cwd=cwd, env=env)
                if not probe.ok:
                    raise ToolNotFound(
                        self.binary, hint=f"`{self.binary} --version` failed: {probe.output_tail[-200:]}"
                    )
                self._dialect = dialect_of(probe.output_tail)
            return self._dialect

    def command(self, job: UnitJob, action: str | None = None) -> tuple[list[str], dict[str, str]]:
        """argv and env for `action` (default: the job's) on the job's unit."""
        action = action or job.action
        if action not in TERRAFORM_ARGS:
            raise UsageError(f"unknown action {action!r}", hint=f"use one of {', '.join(ACTIONS)}")
        dialect = self.dialect(job.env, job.repo.root)
        terraform_args = list(TERRAFORM_ARGS[action])
        if job.lock_timeout and action != "output":
            terraform_args.append(f"-lock-timeout={job.lock_timeout}")
        flags: list[str] = []
        if job.source_override is not None:
            flags += [dialect.source_flag, str(job.source_override)]
        if job.unit.iam_role and self.pass_iam_role:
            flags += [dialect.iam_role_flag, job.unit.iam_role]
        env = dict(job.env)
        env.update(TF_INPUT="0", TF_IN_AUTOMATION="1")
        env[f"{dialect.env_prefix}NON_INTERACTIVE"] = "true"
        # refarch's retry engine decides, with each unit's errors blocks: Terragrunt's own
        # automatic retry would multiply the attempts (3 x 3). TERRAGRUNT_AUTO_RETRY=false is
        # what releases before --terragrunt-no-auto-retry read.
        env[f"{dialect.env_prefix}NO_AUTO_RETRY"] = "true"
        if dialect.name == LEGACY:
            env["TERRAGRUNT_AUTO_RETRY"] = "false"
        # Keep .terragrunt-cache out of the live repo: one download folder per unit.
        env[dialect.download_dir_env] = str(job.work_root / "terragrunt" / unit_slug(job.unit.path))
        if job.refresh_modules:
            env[f"{dialect.env_prefix}SOURCE_UPDATE"] = "true"
        return dialect.argv(self.binary, terraform_args, flags), env

    def execute(self, job: UnitJob) -> EngineResult:
        """One attempt of the job's action; after `output`, the outputs it printed."""
        argv, env = self.command(job)
        stdout: list[str] = []

        def on_line(stream: str, line: str) -> None:
            if stream == "stdout":
                stdout.append(line)
            job.on_line(stream, line)

        result = run_process(
            argv, cwd=job.repo.root / job.unit.path, env=env, on_line=on_line, interrupt=job.interrupt
        )
        outputs = _parse_outputs(stdout) if result.ok and job.action == "output" else None
        return EngineResult(result, outputs)

    def read_outputs(self, job: UnitJob) -> Mapping[str, Any]:
        """`terragrunt output -json` of the unit, as {name: value}."""
        argv, env = self.command(job, "output")
        stdout: list[str] = []
        result = run_process(
            argv,
            cwd=job.repo.root / job.unit.path,
            env=env,
            on_line=lambda s, line: stdout.append(line) if s == "stdout" else None,
            interrupt=job.interrupt,
        )
        if not result.ok:
            raise ProcessFailed(result.argv, result.cwd, result.returncode, result.stderr_tail)
        return _parse_outputs(stdout) or {}


def _parse_outputs(lines: Sequence[str]) -> dict[str, Any] | None:
    """`output -json` text -> {name: value}; None if it is not that document."""
    text = "\n".join(lines)
    start = text.find("{")
    try:
        document = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    return {k: v.get("value") if isinstance(v, dict) else v for k, v in document.items()}


def default_engine_name(env: Mapping[str, str]) -> str:
    """terragrunt when it is on PATH, else terraform (which refarch drives itself)."""
    return "terragrunt" if shutil.which("terragrunt", path=env.get("PATH")) else "terraform"


def make_engine(name: str, settings: Settings | None = None) -> Engine:
    """The engine called `name` ("terragrunt" | "terraform"), configured from `[engine]`."""
    if name == "terragrunt":
        return TerragruntEngine(settings)
    if name == "terraform":
        from refarch.run.terraform import TerraformEngine  # noqa: PLC0415 - heavy, optional

        return TerraformEngine(settings)
    raise UsageError(f"unknown engine {name!r}", hint=f"use one of {', '.join(ENGINES)}")
