"""The error family the library raises; each error carries fields and writes its own message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


class RefarchError(Exception):
    """Base of every error a user can cause. The CLI maps it to exit code `exit_code`."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message


class ConfigError(RefarchError):
    """The live repo or refarch.toml is wrong: names the file and, where known, the line."""

    exit_code = 2

    def __init__(
        self,
        detail: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.detail = detail
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column
        where = ""
        if self.path:
            where = self.path
            if line:
                where += f":{line}"
                if column:
                    where += f":{column}"
            where += ": "
        super().__init__(f"{where}{detail}", hint=hint)


class HclSyntaxError(ConfigError):
    """A file is not valid HCL."""


class EvaluationError(ConfigError):
    """An expression could not be evaluated (unknown function, bad argument, missing local)."""

    def __init__(
        self,
        detail: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        function: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.function = function
        super().__init__(detail, path=path, line=line, hint=hint)


class DependencyCycle(ConfigError):
    """The units' dependencies form a cycle; the whole cycle is in the message."""

    def __init__(self, units: Sequence[str], *, path: str | None = None, line: int | None = None) -> None:
        self.units = tuple(units)
        chain = " -> ".join([*self.units, self.units[0]])
        super().__init__(
            f"dependency cycle: {chain}",
            path=path,
            line=line,
            hint="remove one of these dependency/dependencies entries to break the cycle",
        )


class MissingDependency(ConfigError):
    """A dependency points at a folder with no terragrunt.hcl."""

    def __init__(self, unit: str, target: str, *, path: str | None = None, line: int | None = None):
        self.unit = unit
        self.target = target
        super().__init__(
            f"unit {unit} depends on {target}, which has no terragrunt.hcl",
            path=path,
            line=line,
            hint="fix the config_path / dependencies.paths entry or create the unit",
        )


class UsageError(RefarchError):
    """The command line or the call was wrong."""

    exit_code = 2


class DependencyNotApplied(RefarchError):
    """Selected units need outputs from dependencies outside the selection that have none
    (never applied): the run stopped before starting anything."""

    exit_code = 2

    def __init__(self, needs: Mapping[str, Sequence[str]], command: str) -> None:
        self.needs = {dep: tuple(units) for dep, units in needs.items()}
        self.command = command
        listing = "\n".join(f"  {dep} (needed by {', '.join(units)})" for dep, units in self.needs.items())
        super().__init__(
            f"nothing was started: these dependencies outside the selection have no outputs yet:\n{listing}",
            hint=f"apply them first or with the selection: {command}",
        )


class WrongAccount(RefarchError):
    """The credentials belong to another account than the unit expects."""

    def __init__(self, unit: str, expected: str, actual: str) -> None:
        self.unit = unit
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"refusing to run {unit}: it belongs to account {expected}, "
            f"but the credentials are for account {actual}",
            hint="check the role pattern in refarch.toml, your AWS profile, or the account.hcl",
        )


class AwsError(RefarchError):
    """An AWS call failed in a way refarch cannot fix by itself."""


class NoCredentials(AwsError):
    """No AWS credentials were found: a set-up problem, so a usage error (exit code 2)."""

    exit_code = 2

    def __init__(self, detail: str = "no AWS credentials found") -> None:
        super().__init__(
            detail,
            hint="set AWS_PROFILE (or `profile` in refarch.toml), or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY",
        )


class ProvisionError(RefarchError):
    """Pre-provisioning could not make or fix a resource."""


class BootstrapFailed(ProvisionError):
    """Some accounts could not be bootstrapped; the record keeps what was made before."""

    def __init__(self, failures: Mapping[str, str], record_path: str | None) -> None:
        self.failures = dict(failures)
        self.record_path = record_path
        lines = "\n".join(f"  {name}: {error}" for name, error in sorted(self.failures.items()))
        super().__init__(
            f"bootstrap failed in {len(self.failures)} account(s):\n{lines}",
            hint=(f"what was made is in {record_path}; " if record_path else "")
            + "fix the cause and run bootstrap again: it continues where it stopped",
        )


class ProcessFailed(RefarchError):
    """A tool (terraform, terragrunt, packer) exited non-zero."""

    def __init__(self, argv: Sequence[str], cwd: str, returncode: int, stderr_tail: str) -> None:
        self.argv = tuple(argv)
        self.cwd = cwd
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(
            f"{' '.join(self.argv[:3])} failed with exit code {returncode} in {cwd}\n{stderr_tail}".rstrip()
        )


class ToolNotFound(RefarchError):
    """A required binary is not installed."""

    exit_code = 2

    def __init__(self, tool: str, hint: str) -> None:
        self.tool = tool
        super().__init__(f"{tool} is not installed or not on PATH", hint=hint)


class RunInterrupted(RefarchError):
    """The run was stopped by SIGINT/SIGTERM; running tools were let finish their cleanup."""

    exit_code = 130


class StalePlan(RefarchError):
    """`apply --plan-dir` found units without a plan it may apply: none was saved, or the
    unit changed since its plan was made. Nothing ran."""

    exit_code = 2

    def __init__(self, plan_dir: str | Path, problems: Mapping[str, str], command: str) -> None:
        self.plan_dir = str(plan_dir)
        self.problems = dict(problems)
        listing = "\n".join(f"  {unit}: {why}" for unit, why in sorted(self.problems.items()))
        super().__init__(
            f"refusing to apply the saved plans in {self.plan_dir}: "
            f"{len(self.problems)} unit(s) have no plan that is still valid:\n{listing}",
            hint=f"plan again ({command}), review the new plans, then apply them; nothing was applied",
        )


class ModuleSourceError(RefarchError):
    """A unit's `terraform.source` cannot be fetched or does not hold the module folder."""

    exit_code = 2

    def __init__(self, unit: str | None, source: str, detail: str, *, hint: str | None = None) -> None:
        self.unit = unit
        self.source = source
        self.detail = detail
        who = f"unit {unit}: " if unit else ""
        super().__init__(f"{who}cannot use module source {source}: {detail}", hint=hint)


class StateAtRisk(RefarchError):
    """A working folder still holds Terraform state that was not moved aside: never deleted."""

    def __init__(self, unit: str, files: Sequence[Path]) -> None:
        self.unit = unit
        self.files = tuple(str(f) for f in files)
        super().__init__(
            f"{unit}: its working folder holds Terraform state no run has saved: {', '.join(self.files)}",
            hint="run it through `refarch apply` (which moves such files to .refarch/recovery/ and says "
            "how to push them), or move them aside yourself; refarch will not delete them",
        )


# -- local files (refarch.files) -------------------------------------------------------------
class UnsafeLocalState(RefarchError):
    """A folder or file of refarch's local state (`.refarch/`, the cache key) is not this
    user's alone: someone else could plant a hook, an account id or a state file in it."""

    exit_code = 2

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(
            f"{self.path}: {problem}; refarch trusts only local state that is yours alone", hint=fix
        )


class OutputNotWritten(RefarchError):
    """A file refarch was asked to write (a run report, an audit export) could not be
    written: names the file, what went wrong and, after a run, how the run itself ended."""

    exit_code = 2

    def __init__(self, what: str, path: str | Path, detail: str, *, run_exit_code: int | None = None) -> None:
        self.path = str(path)
        self.detail = detail
        self.run_exit_code = run_exit_code
        after = "" if run_exit_code is None else f" (the run itself ended with exit code {run_exit_code})"
        super().__init__(
            f"could not write the {what} {self.path}: {detail}{after}",
            hint="choose a path in a folder you can write (an existing one, yours), and run again"
            if run_exit_code is None
            else "the ledger has every event of the run (`refarch history`); write it elsewhere next time",
        )


class UnreadableFile(ConfigError):
    """A file refarch reads is not a regular file (a FIFO, a device, a folder), is larger
    than refarch reads, or is not UTF-8 text."""


class RefarchWarning(UserWarning):
    """Something was skipped or started anew (a torn ledger line, a cache that failed
    verification): the library warns, the CLI shows it as a `warning:` line."""
