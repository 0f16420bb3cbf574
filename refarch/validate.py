"""Check a live repo against its local Terraform modules: inputs vs variables, outputs used,
and what bootstrap is asked to make (passwords, certificates, key pairs) that no unit uses.

Terraform only finds a misspelt input or a dependency output that a module does not have when
it runs, one unit at a time; in a fresh multi-account deployment that is an hour in. These
checks are static: they read the modules' `variable` and `output` blocks and the units'
configuration trees, so they run offline and in seconds, before anything is applied.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from refarch.config import evaluate_unit, find_unit_files
from refarch.config.discover import repo_root
from refarch.config.evaluate import Loader, read_config
from refarch.config.hcl import Body, parse_text
from refarch.config.values import Unknown
from refarch.errors import ConfigError, UnreadableFile
from refarch.files import read_text
from refarch.models import Repo, Unit
from refarch.settings import Settings, load_settings

UNIT_FILE = "terragrunt.hcl"
VALIDATE_SCHEMA_VERSION = 1  # of `refarch validate --json`: schemas/validate.schema.json
_Problem = tuple[str, int | None, str]  # (file, line, detail)
_REMOTE = re.compile(r"^([a-z0-9]+::|[a-z][a-z0-9+.-]*://|git@|(github|bitbucket)\.org/|github\.com/)")


@dataclass(frozen=True)
class Variable:
    """A module's `variable` block: required when it has no default."""

    name: str
    required: bool
    path: str
    line: int


@dataclass(frozen=True)
class ModuleInterface:
    """What a Terraform module accepts and gives: its variables and output names."""

    path: Path
    variables: dict[str, Variable]
    outputs: frozenset[str]


@dataclass(frozen=True)
class Mismatch:
    """One disagreement between units and a module, where to fix it, and for which units.

    A line in an `_envcommon` file is shared by many units: it is reported once, naming them.
    """

    path: str  # the file to fix, relative to the repo root when inside it
    line: int | None
    detail: str
    units: tuple[str, ...]

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        if not self.units:
            return f"{where}: {self.detail}"
        units = ", ".join(self.units[:3]) + (
            f" and {len(self.units) - 3} more" if len(self.units) > 3 else ""
        )
        return f"{where}: {self.detail} (unit{'s' if len(self.units) > 1 else ''} {units})"


@dataclass(frozen=True)
class ValidationReport:
    """The result of `validate_repo`: every mismatch, and what was checked or passed over."""

    mismatches: tuple[Mismatch, ...]
    checked: tuple[str, ...]  # units whose module is local
    remote: tuple[str, ...] = ()  # units whose source is remote (not checked)
    modules: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = ()  # e.g. a placeholder account id (validate touches no AWS)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_json(self) -> dict[str, Any]:
        """The `refarch validate --json` contract (schemas/validate.schema.json)."""
        return {
            "schema_version": VALIDATE_SCHEMA_VERSION,
            "ok": self.ok,
            "mismatches": [
                {"path": m.path, "line": m.line, "detail": m.detail, "units": list(m.units)}
                for m in self.mismatches
            ],
            "checked": list(self.checked),
            "remote": list(self.remote),
        }


def local_module_dir(source: str, unit_dir: Path) -> Path | None:
    """The folder of a local module source (`//subdir` and `?ref=` understood); None if remote."""
    if _REMOTE.match(source):
        return None
    path = Path(source.split("?", 1)[0])
    return path if path.is_absolute() else (unit_dir / path).resolve()


def read_module(folder: Path) -> ModuleInterface:
    """Parse every .tf file of a module folder for its variable and output blocks. Like
    Terraform, a folder named `*.tf` is not a configuration file; a file that is not UTF-8
    text (or too large, or a FIFO) is a ConfigError naming it and the line."""
    files = sorted(p for p in folder.glob("*.tf") if not p.is_dir())
    if not files:
        raise ConfigError("no .tf files: not a Terraform module", path=folder)
    variables: dict[str, Variable] = {}
    outputs: set[str] = set()
    for file in files:
        try:
            text = read_text(file)
        except UnreadableFile as exc:
            where = f"{file.name}:{exc.line}" if exc.line else file.name
            raise ConfigError(f"{where}: {exc.detail}", path=file, line=exc.line) from None
        for item in parse_text(text, str(file)):
            if item[0] != "block" or len(item[2]) != 1:
                continue
            kind, (name,), body, line = item[1], item[2], item[3], item[4]
            if kind == "variable":
                required = not any(a[0] == "attr" and a[1] == "default" for a in body)
                variables[name] = Variable(name, required, str(file), line)
            elif kind == "output":
                outputs.add(name)
    return ModuleInterface(folder, variables, frozenset(outputs))


def _line_of(node: Any) -> int | None:
    """The first line number inside an expression (literals carry none)."""
    if isinstance(node, tuple):
        if (
            node
            and node[0]
            in ("var", "attr", "index", "call", "bin", "un", "cond", "tmpl", "splat", "for_t", "for_o")
            and isinstance(node[-1], int)
        ):
            return node[-1]
        for child in node:
            found = _line_of(child)
            if found is not None:
                return found
    return None


def _input_keys(body: Body, text: str) -> dict[str, int]:
    """Keys of a literal `inputs = { ... }` with the line of each (the value's, else its key's)."""
    keys: dict[str, int] = {}
    for item in body:
        if item[0] != "attr" or item[1] != "inputs" or item[2][0] != "object":
            continue
        lines = text.splitlines()
        for key, value in item[2][1]:
            if key[0] != "key":
                continue
            line = _line_of(value)
            if line is None:  # a literal: find the key's own line below `inputs = {`
                pattern = re.compile(rf'^\s*"?{re.escape(key[1])}"?\s*=')
                line = next(
                    (n for n in range(item[3], len(lines) + 1) if pattern.match(lines[n - 1])), item[3]
                )
            keys[key[1]] = line
    return keys


def _output_refs(node: Any) -> Iterator[tuple[str, str, int]]:
    """Every `dependency.X.outputs.Y` (or `...outputs["Y"]`) in an expression: (X, Y, line)."""
    if not isinstance(node, tuple) or not node:
        return
    if node[0] in ("attr", "index") and len(node) == 4:
        outputs = node[1]
        if (
            isinstance(outputs, tuple)
            and outputs[0] == "attr"
            and outputs[2] == "outputs"
            and outputs[1][0] == "attr"
            and outputs[1][1][:2] == ("var", "dependency")
        ):
            name = (
                node[2]
                if node[0] == "attr"
                else (node[2][1] if node[2][0] == "lit" and isinstance(node[2][1], str) else None)
            )
            if name is not None:
                yield outputs[1][2], name, node[3]
                return
    for child in node:
        yield from _output_refs(child)


class _Files:
    """Parsed live-repo files, each parsed once per validation."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bodies: dict[str, tuple[Body, str]] = {}

    def get(self, relative: str) -> tuple[Body, str]:
        if relative not in self.bodies:
            path = self.root / relative
            text = read_text(path, shown=relative)
            self.bodies[relative] = (parse_text(text, relative), text)
        return self.bodies[relative]

    def config_files(self, unit: Unit) -> list[str]:
        """The unit's own file first, then the files it includes that set inputs/dependencies.

        Files read only for their locals (account.hcl, common.hcl ...) are left out.
        """
        own = f"{unit.path}/{UNIT_FILE}" if unit.path != "." else UNIT_FILE
        found = [own]
        for relative in unit.files:
            if relative == own:
                continue
            body, _ = self.get(relative)
            if any(
                (i[0] == "attr" and i[1] == "inputs")
                or (i[0] == "block" and i[1] in ("dependency", "dependencies"))
                for i in body
            ):
                found.append(relative)
        return found


def _referenced_outputs(root: Path, files: _Files) -> dict[str, dict[str, Unknown]]:
    """Every `dependency.X.outputs.Y` in the repo's .hcl files, as {X: {Y: Unknown}}.

    Units are evaluated with these instead of their mock_outputs, so a reference to an output
    that the mocks lack still evaluates, and the module, not the mock, decides if it exists.
    """
    found: dict[str, dict[str, Unknown]] = {}
    for file in find_hcl_files(root):
        try:
            body, _ = files.get(file.relative_to(root).as_posix())
        except ConfigError:
            continue  # a broken file is reported by the unit that reads it
        for dep_name, output, _line in _output_refs(body):
            found.setdefault(dep_name, {})[output] = Unknown(f"dependency.{dep_name}.outputs")
    return found


def find_hcl_files(root: Path) -> list[Path]:
    """The .hcl files of a live repo, outside hidden folders (.refarch, .terragrunt-cache)."""
    return sorted(
        p for p in root.rglob("*.hcl") if not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def validate_repo(
    path: str | Path, *, env: Mapping[str, str] | None = None, settings: Settings | None = None
) -> ValidationReport:
    """Compare every unit with a local module source against that module.

    Reports inputs the module has no variable for, required variables no input sets, and
    `dependency.X.outputs.Y` references to outputs X's module does not have, each with the
    file and line to fix. A unit that cannot be evaluated is reported too, and the others are
    still checked. Units with remote sources are listed as not checked.
    """
    start = Path(path).resolve()
    if not start.is_dir():
        raise ConfigError(f"{path} is not a folder", hint="pass the root of a live repo")
    root = repo_root(start)  # from a subfolder: its units, evaluated as in the whole repo
    env = dict(os.environ) if env is None else env
    settings = settings or load_settings(root, env)
    skeleton = Repo(root=root, units={}, accounts=(), settings=settings)
    declared = _declared(root, settings, env)
    files = _Files(root)
    outputs = _referenced_outputs(root, files)
    found: dict[_Problem, list[str]] = {}
    units: dict[str, Unit] = {}
    warnings: list[str] = []
    for unit_file in find_unit_files(start):
        relative = unit_file.parent.relative_to(root).as_posix()
        try:
            units[relative] = evaluate_unit(
                skeleton, relative, outputs=outputs, env=env, terraform_command="validate", warnings=warnings
            )
        except ConfigError as exc:
            error = (exc.path or f"{relative}/{UNIT_FILE}", exc.line, exc.detail)
            found.setdefault(error, []).append(relative)
    modules: dict[Path, ModuleInterface | str] = {}

    def module_of(unit: Unit) -> ModuleInterface | str | None:
        """The unit's local module, or why it cannot be read; None for a remote source."""
        folder = local_module_dir(unit.source, root / unit.path) if unit.source else None
        if folder is None:
            return None
        if folder not in modules:
            try:
                modules[folder] = read_module(folder)
            except ConfigError as exc:
                modules[folder] = f"module {_rel(root, folder)} (terraform.source): {exc.detail}"
        return modules[folder]

    checked: list[str] = []
    remote: list[str] = []
    for unit in units.values():
        module = module_of(unit)
        if module is None:
            if unit.source:
                remote.append(unit.path)
            continue
        checked.append(unit.path)
        if isinstance(module, str):
            problems: Iterable[_Problem] = [(f"{unit.path}/{UNIT_FILE}", None, module)]
        else:
            config_files = files.config_files(unit)
            problems = chain(
                _check_inputs(unit, module, files, config_files, root, declared.passwords),
                _check_outputs(units, unit, files, config_files, module_of, root),
            )
        for problem in problems:
            found.setdefault(problem, []).append(unit.path)
    if start == root and not remote:  # the whole repo, every module read: unused is unused
        for problem in _unused(declared, units.values(), module_of):
            found.setdefault(problem, [])
    return ValidationReport(
        mismatches=tuple(
            Mismatch(p, line, detail, tuple(names))
            for (p, line, detail), names in sorted(
                found.items(), key=lambda i: (i[0][0], i[0][1] or 0, i[0][2])
            )
        ),
        checked=tuple(checked),
        remote=tuple(remote),
        modules=tuple(sorted(_rel(root, p) for p in modules)),
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _check_inputs(
    unit: Unit,
    module: ModuleInterface,
    files: _Files,
    config_files: list[str],
    root: Path,
    passwords: Mapping[str, tuple[str, int | None]],
) -> Iterator[_Problem]:
    where: dict[str, tuple[str, int]] = {}
    for relative in config_files:
        body, text = files.get(relative)
        for key, line in _input_keys(body, text).items():
            where.setdefault(key, (relative, line))
    own = config_files[0]
    own_line = next((i[3] for i in files.get(own)[0] if i[0] == "attr" and i[1] == "inputs"), 1)
    for name in sorted(set(unit.inputs) - set(module.variables)):
        path, line = where.get(name, (own, 0))
        yield (path, line or None, f"input {name!r} is not a variable of module {_rel(root, module.path)}")
    for variable in sorted(module.variables.values(), key=lambda v: v.name):
        # A declared password reaches the unit as TF_VAR_<name> (refarch apply), not an input.
        if variable.required and variable.name not in unit.inputs and variable.name not in passwords:
            yield (
                own,
                own_line,
                f"required variable {variable.name!r} of module "
                f"{_rel(root, module.path)} is not set in inputs",
            )


def _check_outputs(
    units: Mapping[str, Unit],
    unit: Unit,
    files: _Files,
    config_files: list[str],
    module_of: Callable[[Unit], ModuleInterface | str | None],
    root: Path,
) -> Iterator[_Problem]:
    targets = {d.name: d.path for d in unit.dependency_blocks}
    for relative in config_files:
        body, _ = files.get(relative)
        for dep_name, output, line in _output_refs(body):
            target_path = targets.get(dep_name)
            if target_path is None:
                continue
            if target_path not in units:
                yield (
                    relative,
                    line,
                    f"dependency {dep_name!r} points at {target_path}, which is not a unit (no {UNIT_FILE})",
                )
                continue
            target = module_of(units[target_path])
            if isinstance(target, ModuleInterface) and output not in target.outputs:
                yield (
                    relative,
                    line,
                    f"dependency.{dep_name}.outputs.{output}: module "
                    f"{_rel(root, target.path)} has no output {output!r}",
                )


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Declared:
    """What bootstrap is asked to make, by name, with where it is declared (file, line)."""

    passwords: Mapping[str, tuple[str, int | None]]
    certificates: Mapping[str, tuple[str, int | None]]
    keypairs: Mapping[str, tuple[str, int | None]]


def _declared(root: Path, settings: Settings, env: Mapping[str, str]) -> Declared:
    """bootstrap.hcl's passwords, certificates and key pairs, and refarch.toml's additions
    (read here as `refarch bootstrap` reads them; a broken file is its own error elsewhere)."""
    toml = settings.path.name if settings.path else "refarch.toml"
    found: dict[str, dict[str, tuple[str, int | None]]] = {
        "passwords": {},
        "certificates": {},
        "keypairs": {},
    }
    for name in settings.secrets.passwords:
        found["passwords"][name] = (toml, None)
    for name in (
        *settings.certificates.internal,
        *settings.certificates.cloudfront,
        *settings.certificates.public,
    ):
        found["certificates"][name] = (toml, None)
    for name in settings.keypairs.names:
        found["keypairs"][name] = (toml, None)
    path = root / settings.bootstrap.file
    if path.is_file():
        try:
            config, _ = read_config(Loader(root, env=dict(env)), path.resolve(), path.resolve().parent)
            text = read_text(path, shown=settings.bootstrap.file)
        except (ConfigError, UnreadableFile):
            config, text = {}, ""
        values = config.get("locals") or {}
        passwords = values.get("passwords")
        certificates = values.get("certificates")
        keypairs = values.get("keypairs")
        lists = {
            "passwords": passwords if isinstance(passwords, list) else [],
            "certificates": [
                n
                for key in ("internal", "cloudfront", "public")
                for n in (certificates.get(key) or [] if isinstance(certificates, dict) else [])
            ],
            "keypairs": list(keypairs.values()) if isinstance(keypairs, dict) else [],
        }
        if isinstance(certificates, dict) and certificates.get("accounts") == []:
            lists["certificates"] = []  # made for no account
        for kind, names in lists.items():
            for name in names:
                if isinstance(name, str):
                    found[kind][name] = (settings.bootstrap.file, _line_with(text, f'"{name}"'))
    return Declared(found["passwords"], found["certificates"], found["keypairs"])


def _line_with(text: str, needle: str) -> int | None:
    return next((n for n, line in enumerate(text.splitlines(), 1) if needle in line), None)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _unused(
    declared: Declared,
    units: Iterable[Unit],
    module_of: Callable[[Unit], ModuleInterface | str | None],
) -> Iterator[_Problem]:
    """A password no unit's module declares as a variable (its TF_VAR_ reaches nobody), and a
    certificate or key pair whose name no unit's inputs hold (units find them by name)."""
    variables: set[str] = set()
    strings: set[str] = set()
    for unit in units:
        module = module_of(unit)
        if isinstance(module, ModuleInterface):
            variables |= set(module.variables)
        strings |= set(_strings(dict(unit.inputs)))
    checks: tuple[tuple[str, Mapping[str, tuple[str, int | None]], set[str], str], ...] = (
        ("password", declared.passwords, variables, "no unit's module has a variable of that name"),
        ("certificate", declared.certificates, strings, "no unit's inputs name it"),
        ("key pair", declared.keypairs, strings, "no unit's inputs name it"),
    )
    for kind, names, used, why in checks:
        for name, (path, line) in sorted(names.items()):
            if name not in used:
                yield (
                    path,
                    line,
                    f"{kind} {name!r} is declared for `refarch bootstrap` but nothing uses it ({why}); "
                    "use it in a unit or remove it",
                )
