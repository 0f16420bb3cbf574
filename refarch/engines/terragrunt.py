"""The terragrunt engine: `terragrunt <cmd>` in the unit's folder, in either CLI dialect."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refarch.engines.base import ACTIONS, EngineResult, UnitJob, stdout_kept
from refarch.engines.plan_file import changes_of, json_object
from refarch.engines.workdir import find_state_files, unit_slug
from refarch.errors import ConfigError, ProcessFailed, ToolNotFound, UsageError
from refarch.exec.process import ProcessResult, capture, run_process
from refarch.settings import EngineSettings, Settings

# -- terragrunt -------------------------------------------------------------------------------
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
    "show": ("show", "-json", "-no-color"),  # of a saved plan (job.plan_file)
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
        engine = settings.engine if settings is not None else EngineSettings()
        self.binary = binary or engine.terragrunt_binary
        self.pass_iam_role = engine.terragrunt_pass_iam_role
        forced = dialect or engine.terragrunt_dialect
        if forced is not None and forced not in DIALECTS:
            raise ConfigError(
                f"unknown Terragrunt dialect {forced!r}: use one of {sorted(DIALECTS)}",
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
        if job.lock_timeout and action not in ("output", "show"):
            terraform_args.append(f"-lock-timeout={job.lock_timeout}")
        # Terraform runs in the download folder, not the unit's: the plan file's path is absolute.
        if job.plan_file is not None and action == "plan":
            terraform_args.append(f"-out={job.plan_file.resolve()}")
        elif job.plan_file is not None and action == "apply":
            terraform_args.append(str(job.plan_file.resolve()))  # exactly the saved plan
        elif job.plan_file is not None and action == "show":
            terraform_args.append(str(job.plan_file.resolve()))
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
        env[dialect.download_dir_env] = str(self.download_dir(job))
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
        if result.ok and job.action == "plan" and job.plan_file is not None:
            return self._show(job, result)
        return EngineResult(result, outputs)

    def _show(self, job: UnitJob, plan: ProcessResult) -> EngineResult:
        """After `plan -out`: what the saved plan changes (`terragrunt show -json PLANFILE`).
        Its stdout holds every planned value, secrets included: counted in memory, never logged."""
        argv, env = self.command(job, "show")
        stdout: list[str] = []
        shown = run_process(
            argv,
            cwd=job.repo.root / job.unit.path,
            env=env,
            on_line=stdout_kept(job.on_line, stdout),
            interrupt=job.interrupt,
        )
        document = json_object(stdout) if shown.ok else None
        if document is None:
            why = "terragrunt show -json did not print a plan document" if shown.ok else shown.stderr_tail
            return EngineResult(
                ProcessResult(
                    shown.argv, shown.cwd, shown.returncode or 1, "", why, shown.duration, shown.interrupted
                ),
                None,
            )
        return EngineResult(plan, None, plan=changes_of(document), document=document)

    def download_dir(self, job: UnitJob) -> Path:
        """Where Terragrunt keeps this unit's .terragrunt-cache: outside the live repo."""
        return job.work_root / "terragrunt" / unit_slug(job.unit.path)

    def state_files(self, job: UnitJob) -> list[Path]:
        """errored.tfstate in the unit's download folder, or in the unit's own folder (a unit
        without terraform.source runs there; its terraform.tfstate is live local state)."""
        in_place = job.repo.root / job.unit.path / "errored.tfstate"
        cached = find_state_files(self.download_dir(job)) if self.download_dir(job).is_dir() else []
        return [f for f in cached if f.name != "terraform.tfstate"] + (
            [in_place] if in_place.is_file() else []
        )

    def terraform_command(self, job: UnitJob, args: Sequence[str]) -> ProcessResult:
        """`terragrunt <args>` in the unit's folder (e.g. `state push FILE`)."""
        _, env = self.command(job, "output")
        argv = self.dialect(job.env, job.repo.root).argv(self.binary, list(args), [])
        return run_process(argv, cwd=job.repo.root / job.unit.path, env=env, on_line=job.on_line)

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
    document = json_object(lines)
    if document is None:
        return None
    return {k: v.get("value") if isinstance(v, dict) else v for k, v in document.items()}
