"""Walk a live repo, evaluate every terragrunt.hcl, and return the units and accounts."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from refarch.config.cache import UnitCache, digest_of, records_key, unit_from_dict, unit_to_dict
from refarch.config.evaluate import FEATURE_ENV, Loader, Records, UnitContext, parse_features, read_config
from refarch.config.hcl import Body, load_parser, parse_config
from refarch.config.stacks import STACK_DIR, find_stack_files
from refarch.config.values import Unknown, as_bool, to_plain
from refarch.errors import (
    ConfigError,
    DependencyCycle,
    HclSyntaxError,
    MissingDependency,
    RefarchError,
    RefarchWarning,
    UnreadableFile,
)
from refarch.files import read_bounded
from refarch.models import Account, Dependency, ErrorRule, Exclude, Generate, RemoteState, Repo, Unit
from refarch.patterns import PatternError, compile_pattern
from refarch.settings import Settings, load_settings
from refarch.terragrunt_defaults import TERRAGRUNT_RETRYABLE_ERRORS

UNIT_FILE = "terragrunt.hcl"
JSON_UNIT_FILE = "terragrunt.hcl.json"  # HCL's JSON syntax; Terragrunt prefers it when both exist
ACCOUNT_FILE = "account.hcl"
REGION_FILE = "region.hcl"
SKIP_DIRS = {"node_modules", "__pycache__"}
TOOL_DIRS = {".git", ".terraform", ".terragrunt-cache", ".refarch"}  # never searched for units
EXCLUDES_FILE = ".terragrunt-excludes"
PARALLEL_THRESHOLD = 200  # below this many files to parse, worker processes cost more than they save


def find_unit_files(root: Path, *, hidden: bool = True) -> list[Path]:
    """Every terragrunt.hcl below root (see find_unit_folders)."""
    return [unit_file(root / rel if rel != "." else root) for rel in find_unit_folders(root, hidden=hidden)]


def unit_file(folder: Path) -> Path:
    """The folder's unit config: terragrunt.hcl.json when present (Terragrunt's order), else
    terragrunt.hcl."""
    json_file = folder / JSON_UNIT_FILE
    return json_file if json_file.is_file() else folder / UNIT_FILE


def find_unit_folders(root: Path, *, hidden: bool = True) -> list[str]:
    """The folders (relative, POSIX) that hold a terragrunt.hcl; strings, for speed.

    Hidden folders (`.name`) are searched, as Terragrunt 1.x does, except the tools' own
    (.git, .terraform, .terragrunt-cache, .refarch); `hidden=False` (--no-hidden) skips them all."""
    found = []
    top = str(root)
    cut = len(top) + 1
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIP_DIRS
            and d not in TOOL_DIRS
            and (hidden or not d.startswith(".") or d == STACK_DIR)
        )
        if UNIT_FILE in files or JSON_UNIT_FILE in files:
            rel = folder[cut:] if len(folder) > len(top) else "."
            found.append(rel.replace(os.sep, "/") if os.sep != "/" else rel)
    return found


def _shown(folder: str, hidden: bool) -> bool:
    """Hidden folders are searched unless --no-hidden; generated stacks always are."""
    return hidden or not folder.startswith(".") or folder == STACK_DIR


def load_repo(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    jobs: int | None = None,
    cache: bool = True,
    cache_dir: Path | None = None,
    aws_account_id: Callable[[], str] | None = None,
    hidden: bool = True,
    excludes_file: str | Path | None = None,
    features: Mapping[str, str] | None = None,
    touches_aws: bool = True,
) -> Repo:
    """Read every unit of a live repo. Dependency outputs are mocked (or Unknown).

    Parses each file at most once and evaluates each included file once per distinct context
    (see config/evaluate.py), in `jobs` worker processes (default: one per core) when there
    are many units, and keeps a cache under `<root>/.refarch/cache` so that an unchanged repo
    loads without parsing.
    As Terragrunt: `hidden` folders are searched unless False; the folders listed in
    `excludes_file` (default `<root>/.terragrunt-excludes`; relative paths from the root) are
    kept in `Repo.excludes` for the plan to leave out; `features` (name -> value) override
    feature flags' defaults, on top of TG_FEATURE. With `touches_aws=False` (graph, plan, ci:
    nothing reaches AWS) an account id that is a placeholder ("replaceme") is unknown (None)
    and named once in `Repo.warnings`, instead of the error an apply gets.
    """
    start = Path(path).resolve()
    if not start.is_dir():
        raise ConfigError(f"{path} is not a folder", hint="pass the root of a live repo")
    root = repo_root(start)  # from a subfolder: the repo's settings, accounts and guard
    env = dict(os.environ) if env is None else env
    merged_features = {**parse_features(env.get(FEATURE_ENV, "")), **(features or {})}
    if features:  # through the env, so that the cache keys units by the flags' values too
        env = {**env, FEATURE_ENV: ",".join(f"{k}={v}" for k, v in merged_features.items())}
    settings = settings or load_settings(root, env)
    unit_folders = find_unit_folders(root, hidden=hidden)
    if not any(_is_below(rel, root, start) for rel in unit_folders):
        if not find_stack_files(start):
            raise ConfigError(f"no {UNIT_FILE} found below {path}", hint=_no_units_hint(root))
        # Terragrunt: stacks not generated (--no-stack-generate, or an empty .terragrunt-stack)
        # are no units, and a run of no units succeeds.
        warnings.warn(
            f"{path}: its terragrunt.stack.hcl files are not generated, so it has no units "
            "(`refarch stack generate` generates them)",
            RefarchWarning,
            stacklevel=2,
        )
        unit_folders = []
    unit_cache = UnitCache(root, cache_dir or root / ".refarch" / "cache", env) if cache else None
    loader = Loader(root, env=env, aws_account_id=aws_account_id)

    cached: dict[str, tuple[Unit, dict[str, Any]]] = {}
    todo: dict[str, Path] = {}
    for rel in unit_folders:
        hit = unit_cache.lookup(rel) if unit_cache else None
        if hit is not None:
            cached[rel] = hit
        else:
            todo[rel] = unit_file(root / rel if rel != "." else root)
    shipped = {} if aws_account_id else _evaluate_in_parallel(root, env, settings, todo, jobs)
    evaluated = {rel: None if s is None else (unit_from_dict(s[0]), s[1], s[2]) for rel, s in shipped.items()}
    if aws_account_id:  # a session's callback stays in this process: parse in workers only
        _parse_in_parallel(loader, todo.values(), jobs)

    units: dict[str, Unit] = {}
    include_targets: set[str] = set()
    failures: dict[str, ConfigError] = {}
    account_problems: dict[str, list[Any]] = {}  # unit -> [file, line, value]
    for rel in unit_folders:
        if rel in cached:
            unit, meta = cached[rel]
        else:
            result = evaluated.get(rel)
            if result is None:  # evaluated here (a worker's error too: raised as in one process)
                try:
                    result = _evaluate_new_unit(loader, todo[rel], settings)
                except ConfigError as exc:
                    failures[rel] = exc  # raised below, unless other units include this file
                    continue
            unit, meta, key = result
            if unit_cache:
                data = shipped.get(rel)
                unit_cache.store(unit, key, meta, data=data[0] if data else None)
        units[rel] = unit
        include_targets.update(meta["include_targets"])
        if meta.get("account_problem"):
            account_problems[rel] = meta["account_problem"]
    if unit_cache:
        unit_cache.save()
    # A terragrunt.hcl that other units include (the old root layout) is not a unit itself:
    # evaluated on its own it may not even make sense (find_in_parent_folders from the root).
    for target in include_targets:
        units.pop(target, None)
        failures.pop(target, None)
    units, failures = _within(units, failures, root, start)
    if failures:
        raise failures[min(failures)]
    problems = sorted(
        {tuple(account_problems[rel]) for rel in units if rel in account_problems},
        key=lambda p: (p[0], p[1] or 0, p[2]),
    )
    invalid = [problem for problem in problems if problem[2] is not None]  # missing: refused at apply
    if invalid and touches_aws:
        raise _account_id_error(*invalid[0])
    _add_external_units(loader, units, settings, include_targets)
    _check_dependencies(root, units)
    return Repo(
        root=root,
        units=dict(sorted(units.items())),
        accounts=_accounts(units),
        settings=settings,
        excludes=read_excludes_file(root, excludes_file),
        features=merged_features,
        warnings=tuple(_account_id_warning(*problem) for problem in problems),
    )


def read_excludes_file(root: Path, name: str | Path | None) -> tuple[str, ...]:
    """The folders a Terragrunt excludes file lists (one per line, `#` comments), relative to
    the root. A missing default file means none; a missing named one is an error."""
    file = Path(root, name if name is not None else EXCLUDES_FILE)
    if not file.is_file():
        if name is None:
            return ()
        raise ConfigError(
            f"excludes file {name} does not exist", hint="pass an existing file to --queue-excludes-file"
        )
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the excludes file: {exc}", path=str(file)) from None
    return tuple(line.strip() for line in lines if line.strip() and not line.strip().startswith("#"))


def _no_units_hint(root: Path) -> str:
    if find_stack_files(root):  # stacks not generated yet: load_repo only reads
        return "its terragrunt.stack.hcl files are not generated: run `refarch stack generate` first"
    return "pass the root of an infrastructure-live repo"


def evaluate_unit(
    repo: Repo,
    unit_path: str,
    *,
    outputs: Mapping[str, Mapping[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
    terraform_command: str = "apply",
    warnings: list[str] | None = None,
) -> Unit:
    """Evaluate one unit again, with the real outputs of its dependencies (by block name).

    The runner calls this right before a unit runs, so `inputs` carry real values. Given a
    `warnings` list (a caller that does not touch AWS), a placeholder account id is added to
    it and the unit's account id is None, instead of an error.
    """
    env = dict(os.environ) if env is None else env
    if repo.features:
        env = {**env, FEATURE_ENV: ",".join(f"{k}={v}" for k, v in repo.features.items())}
    loader = Loader(repo.root, env=env, terraform_command=terraform_command)
    folder = repo.root / unit_path if unit_path != "." else repo.root
    unit, meta, _ = _evaluate_new_unit(loader, unit_file(folder), repo.settings, outputs=outputs)
    if meta.get("account_problem"):
        if warnings is None and meta["account_problem"][2] is not None:
            raise _account_id_error(*meta["account_problem"])
        if warnings is not None:
            warnings.append(_account_id_warning(*meta["account_problem"]))
    return unit


# -- one unit ----------------------------------------------------------------------------------
# -- a subfolder of a repo ------------------------------------------------------------------------
ROOT_MARKERS = ("root.hcl", "refarch.toml")


def repo_root(start: Path) -> Path:
    """The root of the live repo `start` is in: the nearest folder at or above it holding
    root.hcl or refarch.toml, else the parent of the nearest account folder (one holding
    account.hcl) above it, else `start` itself. The search ends at a git repository's top."""
    start = Path(start).resolve()
    above_account = None
    for folder in (start, *start.parents):
        if any(os.path.isfile(folder / marker) for marker in ROOT_MARKERS):
            return folder
        if above_account is None and folder != start and os.path.isfile(folder / ACCOUNT_FILE):
            above_account = folder.parent
        if os.path.exists(folder / ".git"):
            break
    return above_account or start


def _is_below(rel: str, root: Path, start: Path) -> bool:
    if start == root:
        return True
    below = _unit_path(root, start)
    return rel == below or rel.startswith(below + "/")


def _within(
    units: dict[str, Unit], failures: dict[str, ConfigError], root: Path, start: Path
) -> tuple[dict[str, Unit], dict[str, ConfigError]]:
    """Loaded from a subfolder: its units and what they depend on, and only the errors of
    those. The dependencies outside the subfolder are external units, as in Terragrunt: read
    for their outputs, not run (unless --with-dependencies / --queue-include-external)."""
    if start == root:
        return units, failures
    wanted = [rel for rel in [*units, *failures] if _is_below(rel, root, start)]
    kept: set[str] = set()
    while wanted:
        rel = wanted.pop()
        if rel not in kept:
            kept.add(rel)
            wanted.extend(units[rel].dependencies if rel in units else ())
    return (
        {
            rel: unit if _is_below(rel, root, start) else replace(unit, external=True)
            for rel, unit in units.items()
            if rel in kept
        },
        {rel: error for rel, error in failures.items() if rel in kept},
    )


def _evaluate_new_unit(
    loader: Loader,
    file: Path,
    settings: Settings,
    outputs: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[Unit, dict[str, Any], dict[str, Any]]:
    ctx = UnitContext(loader, file, outputs=outputs)
    unit_dir = file.parent
    loader.exists(unit_dir / JSON_UNIT_FILE, ctx.records)  # a cached unit notices a new JSON twin
    rel = _unit_path(loader.root, unit_dir)
    account, account_id, account_problem = _account_of(loader, unit_dir, ctx.records)
    ctx.account_id = account_id
    config = ctx.evaluate()
    region = _region_of(loader, unit_dir, ctx.records, config)
    deps, blocks = _dependencies(loader, ctx, config, rel)
    remote = config.get("remote_state")
    terraform = dict(config.get("terraform") or {})
    source = terraform.pop("source", None)
    exclude = config.get("exclude")
    key = records_key(ctx.records, loader.root)
    unit = Unit(
        path=rel,
        account=account,
        account_id=account_id,
        region=region,
        tier=settings.tier_of(account),
        skip=as_bool(config.get("skip")),
        dependencies=deps,
        dependency_blocks=blocks,
        source=_string_or_none(source, "terraform.source", file, loader),
        remote_state=_remote_state(remote, file, loader),
        inputs=to_plain(config.get("inputs") or {}),
        iam_role=_string_or_none(config.get("iam_role"), "iam_role", file, loader),
        prevent_destroy=as_bool(config.get("prevent_destroy")),
        exclude=None
        if not isinstance(exclude, dict)
        else Exclude(
            if_=as_bool(exclude.get("if")),
            actions=tuple(exclude.get("actions") or ("all",)),
            exclude_dependencies=as_bool(exclude.get("exclude_dependencies")),
        ),
        generate=tuple(
            Generate(
                name,
                str(g.get("path", "")),
                str(to_plain(g.get("contents", ""))),
                str(g.get("if_exists", "overwrite_terragrunt")),
                as_bool(g.get("disable")),
            )
            for name, g in sorted((config.get("generate") or {}).items())
            if isinstance(g, dict)
        ),
        terraform=to_plain(terraform),
        locals=to_plain(config.get("locals") or {}),
        files=tuple(sorted(key["files"])),
        digest=digest_of(key),
        errors=_errors(config, file, loader),
        terraform_binary=_string_or_none(config.get("terraform_binary"), "terraform_binary", file, loader),
    )
    meta = {
        "include_targets": [
            _unit_path(loader.root, inc.path.parent)
            for inc in ctx.includes.values()
            if inc.path.name in (UNIT_FILE, JSON_UNIT_FILE)
        ],
        "account_problem": account_problem,
    }
    return unit, meta, key


def _unit_path(root: Path, folder: Path) -> str:
    """The folder relative to root in POSIX form ("." for root itself)."""
    text, prefix = str(folder), str(root) + os.sep
    if text.startswith(prefix):
        rel = text[len(prefix) :]
        return rel.replace(os.sep, "/") if os.sep != "/" else rel
    return Path(os.path.relpath(folder, root)).as_posix()


def _string_or_none(value: Any, what: str, file: Path, loader: Loader) -> str | None:
    if value is None:
        return None
    if isinstance(value, Unknown):
        raise ConfigError(
            f"{what} depends on a value only known after apply ({value.reason})", path=loader.rel(file)
        )
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a string, got {type(value).__name__}", path=loader.rel(file))
    return value


def _errors(config: dict[str, Any], file: Path, loader: Loader) -> tuple[ErrorRule, ...]:
    """The unit's `errors` blocks, checked as Terragrunt checks them, then the older
    retryable_errors / retry_max_attempts / retry_sleep_interval_sec attributes as one block
    (retryable_errors replaces Terragrunt's default list, as it did)."""
    where = loader.rel(file)
    block = config.get("errors")
    block = block if isinstance(block, dict) else {}
    rules = []
    for kind, key in (("retry", "retryable_errors"), ("ignore", "ignorable_errors")):
        for name, raw in sorted(_as_dict(block.get(kind)).items()):
            body = _as_dict(raw)
            patterns = _patterns(body.get(key), f'errors.{kind} "{name}" {key}', where)
            if kind == "ignore":
                signals = to_plain(_as_dict(body.get("signals")))
                rules.append(
                    ErrorRule(kind, name, patterns, message=str(body.get("message") or ""), signals=signals)
                )
                continue
            attempts, sleep = body.get("max_attempts"), body.get("sleep_interval_sec", 0)
            rules.append(
                ErrorRule(
                    kind, name, patterns, *_retry_numbers(attempts, sleep, f'errors.retry "{name}"', where)
                )
            )
    legacy = [config.get(k) for k in ("retryable_errors", "retry_max_attempts", "retry_sleep_interval_sec")]
    if any(v is not None for v in legacy):
        patterns = (
            _patterns(legacy[0], "retryable_errors", where)
            if legacy[0] is not None
            else TERRAGRUNT_RETRYABLE_ERRORS
        )
        attempts = legacy[1] if legacy[1] is not None else 3
        sleep = legacy[2] if legacy[2] is not None else 5
        rules.append(
            ErrorRule(
                "retry", "retryable_errors", patterns, *_retry_numbers(attempts, sleep, "retry_*", where)
            )
        )
    return tuple(rules)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _patterns(raw: Any, what: str, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise ConfigError(f"{what} must be a list of regular expressions", path=where)
    for pattern in raw:
        try:
            compile_pattern(pattern.removeprefix("!"))
        except PatternError as exc:
            raise ConfigError(
                f"{what}: {pattern!r} is not a valid regular expression: {exc}", path=where
            ) from None
    return tuple(raw)


def _retry_numbers(attempts: Any, sleep: Any, what: str, where: str) -> tuple[int, float]:
    if isinstance(attempts, bool) or not isinstance(attempts, int | float) or attempts < 1:
        raise ConfigError(f"{what}: max_attempts must be at least 1, got {attempts!r}", path=where)
    if isinstance(sleep, bool) or not isinstance(sleep, int | float) or sleep < 0:
        raise ConfigError(f"{what}: sleep_interval_sec must not be negative, got {sleep!r}", path=where)
    return int(attempts), float(sleep)


def _remote_state(remote: Any, file: Path, loader: Loader) -> RemoteState | None:
    if remote is None:
        return None
    if not isinstance(remote, dict) or not isinstance(remote.get("backend"), str):
        raise ConfigError("remote_state needs a backend (a string) and a config map", path=loader.rel(file))
    generate = remote.get("generate")
    return RemoteState(
        backend=remote["backend"],
        config=to_plain(remote.get("config") or {}),
        generate=to_plain(generate) if isinstance(generate, dict) else None,
        disable_init=as_bool(remote.get("disable_init")),
    )


def _nearest(loader: Loader, folder: Path, name: str, records: Records) -> Path | None:
    """The nearest `name` file in `folder` or above it, up to the repo root."""
    if loader.exists(folder / name, records):
        return folder / name
    if folder == loader.root:
        return None
    found = loader.find_up(folder, name, records, stop=loader.root)
    return Path(found) if found is not None and os.path.isfile(found) else None


def _account_of(loader: Loader, unit_dir: Path, records: Records) -> tuple[str, str | None, list[Any] | None]:
    """The account of the nearest account.hcl (account_name, aws_account_id), and the
    [file, line, value] of an aws_account_id that is not 12 digits or missing (value None)."""
    path = _nearest(loader, unit_dir, ACCOUNT_FILE, records)
    if path is None:
        parts = [p for p in _unit_path(loader.root, unit_dir).split("/") if p not in (".", "..")]
        return (parts[0] if parts else "default"), None, None
    config, read_records = read_config(loader, path, unit_dir)
    records.absorb(read_records)
    local_values = config.get("locals") or {}
    name = local_values.get("account_name", path.parent.name)
    account_id = local_values.get("aws_account_id")
    if isinstance(account_id, Unknown):  # e.g. get_aws_account_id() without a session
        account_id = None
    if isinstance(account_id, int) and not isinstance(account_id, bool):
        account_id = f"{account_id:012d}"
    if not isinstance(name, str) or not (account_id is None or isinstance(account_id, str)):
        raise ConfigError(
            "account_name and aws_account_id must be strings",
            path=loader.rel(path),
            hint='aws_account_id = "111111111111"',
        )
    problem = _check_account(loader, path, name, account_id, declared="aws_account_id" in local_values)
    return name, None if problem else account_id, problem


ACCOUNT_ID = re.compile(r"\d{12}")


def _check_account(
    loader: Loader, path: Path, name: str, account_id: str | None, *, declared: bool = True
) -> list[Any] | None:
    """An account id is 12 digits, and an account name is a safe path component (it names
    folders: keys, records): both checked when the repo is loaded, naming file and line. A
    bad name is an error; a bad or missing id (value None) is returned as [file, line, value]:
    only AWS needs it."""
    blocks = [block[4] for block in loader.bodies[path][0] if block[0] == "block" and block[1] == "locals"]
    lines = {
        attr[1]: attr[3]
        for block in loader.bodies[path][0]
        if block[0] == "block" and block[1] == "locals"
        for attr in block[3]
        if attr[0] == "attr"
    }
    if name in ("", ".", "..") or any(c in name for c in "/\\") or not name.isprintable():
        raise ConfigError(
            f"account_name {name!r} is not a safe folder name (refarch makes folders named after accounts)",
            path=loader.rel(path),
            line=lines.get("account_name"),
            hint='use letters, digits, "-", "_" and ".": account_name = "dev"',
        )
    if not declared:
        return [loader.rel(path), blocks[0] if blocks else None, None]
    if account_id is not None and not ACCOUNT_ID.fullmatch(account_id):
        return [loader.rel(path), lines.get("aws_account_id"), account_id]
    return None


def _account_id_error(path: str, line: int | None, value: str) -> ConfigError:
    return ConfigError(
        f"aws_account_id {value!r} is not a 12-digit AWS account id",
        path=path,
        line=line,
        hint='write the account id as a string of 12 digits: aws_account_id = "111111111111"',
    )


def _account_id_warning(path: str, line: int | None, value: str | None) -> str:
    where = f"{path}:{line}" if line else path
    if value is None:
        return (
            f"{where}: no aws_account_id in these locals; read as unknown here, but apply and "
            "destroy refuse (the wrong-account guard cannot check the account) until it is set"
        )
    return (
        f"{where}: aws_account_id {value!r} is not a 12-digit AWS account id; read as unknown "
        "here, but apply, destroy and bootstrap refuse until it is the real id"
    )


def _region_of(loader: Loader, unit_dir: Path, records: Records, config: dict[str, Any]) -> str | None:
    path = _nearest(loader, unit_dir, REGION_FILE, records)
    if path is not None:
        region_config, read_records = read_config(loader, path, unit_dir)
        records.absorb(read_records)
        region = (region_config.get("locals") or {}).get("aws_region")
        if isinstance(region, str):
            return region
    inputs = config.get("inputs")
    region = inputs.get("aws_region") if isinstance(inputs, dict) else None
    return region if isinstance(region, str) else None


def _dependencies(
    loader: Loader, ctx: UnitContext, config: dict[str, Any], rel: str
) -> tuple[tuple[str, ...], tuple[Dependency, ...]]:
    unit_dir = ctx.terragrunt_dir
    edges: list[str] = []
    blocks: list[Dependency] = []

    def target(raw: Any, where: Path, line: int | None, what: str) -> str:
        if raw is None or raw == "":
            # Terragrunt: DependencyInvalidConfigPathError, never a silently dropped edge.
            raise ConfigError(
                f"{what} is empty", path=loader.rel(where), line=line, hint="point it at a unit's folder"
            )
        if not isinstance(raw, str):
            detail = raw.reason if isinstance(raw, Unknown) else type(raw).__name__
            raise ConfigError(
                f"{what} must be a path known before apply (got {detail})", path=loader.rel(where), line=line
            )
        folder = Path(os.path.normpath(unit_dir / raw))
        if not (
            loader.exists(folder / UNIT_FILE, ctx.records)
            or loader.exists(folder / JSON_UNIT_FILE, ctx.records)
        ):
            raise MissingDependency(rel, _unit_path(loader.root, folder), path=loader.rel(where), line=line)
        found = _unit_path(loader.root, folder)
        if found == rel:  # Terragrunt reports a unit depending on itself as a cycle
            raise DependencyCycle([rel], path=loader.rel(where), line=line)
        return found

    for name, block in sorted((config.get("dependency") or {}).items()):
        scope, _, line = ctx.dependency_blocks[name]
        enabled = as_bool(block.get("enabled", True))
        raw = block.get("config_path")
        if enabled:
            path = target(raw, scope.path, line, f'dependency "{name}" config_path')
        else:  # Terragrunt ignores a disabled dependency before it checks the path
            known = isinstance(raw, str) and raw != ""
            path = _unit_path(loader.root, Path(os.path.normpath(unit_dir / str(raw)))) if known else ""
        mocks = block.get("mock_outputs")
        allowed = block.get("mock_outputs_allowed_terraform_commands")
        blocks.append(
            Dependency(
                name=name,
                path=path,
                enabled=enabled,
                skip_outputs=as_bool(block.get("skip_outputs")),
                mock_outputs=to_plain(mocks) if isinstance(mocks, dict) else None,
                mock_outputs_allowed_terraform_commands=tuple(allowed) if isinstance(allowed, list) else None,
            )
        )
        if enabled:
            edges.append(path)
    paths = (config.get("dependencies") or {}).get("paths") or []
    if not isinstance(paths, list):
        raise ConfigError("dependencies.paths must be a list", path=loader.rel(ctx.config_path))
    where, paths_line = _block_location(ctx, "dependencies")
    for raw in paths:
        edges.append(target(raw, where, paths_line, "dependencies.paths entry"))
    return tuple(dict.fromkeys(edges)), tuple(blocks)


def _block_location(ctx: UnitContext, kind: str) -> tuple[Path, int | None]:
    bodies = [(ctx.config_path, ctx.loader.bodies[ctx.config_path][0])]
    bodies += [(inc.path, ctx.loader.bodies[inc.path][0]) for inc in ctx.includes.values()]
    for path, body in bodies:
        for item in body:
            if item[0] == "block" and item[1] == kind:
                return path, item[4]
    return ctx.config_path, None


def _add_external_units(
    loader: Loader, units: dict[str, Unit], settings: Settings, include_targets: set[str]
) -> None:
    """Dependencies that discovery did not find (outside the repo root, or in a hidden folder
    with --no-hidden) are external units, as in Terragrunt: read (for their outputs and their
    own dependencies), not queued. An external unit takes the earliest tier of the units that
    depend on it, so the account tiers never make a run wait for it."""

    def missing(deps: Iterable[str]) -> list[str]:
        return [d for d in deps if d not in units and d not in include_targets]

    todo = sorted(set(missing(d for u in units.values() for d in u.dependencies)))
    while todo:
        rel = todo.pop()
        if rel in units:
            continue
        file = unit_file(Path(os.path.normpath(loader.root / rel)))
        unit, _, _ = _evaluate_new_unit(loader, file, settings)
        units[rel] = replace(unit, external=True)
        todo += missing(unit.dependencies)
    changed = True
    while changed:  # lower each external unit's tier to its earliest dependent's
        changed = False
        for unit in list(units.values()):
            for dep in unit.dependencies:
                target = units.get(dep)
                if target is not None and target.external and target.tier > unit.tier:
                    units[dep] = replace(target, tier=unit.tier)
                    changed = True


def _check_dependencies(root: Path, units: Mapping[str, Unit]) -> None:
    for unit in units.values():
        for dep in unit.dependencies:
            if dep not in units:
                raise MissingDependency(unit.path, dep, path=f"{unit.path}/{UNIT_FILE}")


def _accounts(units: Mapping[str, Unit]) -> tuple[Account, ...]:
    grouped: dict[str, list[Unit]] = {}
    for unit in units.values():
        grouped.setdefault(unit.account, []).append(unit)
    accounts = []
    for name, members in grouped.items():
        ids = {u.account_id for u in members}
        accounts.append(
            Account(
                name=name,
                id=next(iter(ids)) if len(ids) == 1 else None,
                tier=members[0].tier,
                regions=tuple(sorted({u.region for u in members if u.region})),
                units=tuple(u.path for u in members),
            )
        )
    return tuple(sorted(accounts, key=lambda a: (a.tier, a.name)))


# -- parallel evaluation -------------------------------------------------------------------------
Shipped = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]  # a unit as data, its meta and key
_worker: dict[str, Any] = {}  # each evaluation worker's own loader (its parsed files and memos)


def _start_worker(root: Path, env: Mapping[str, str], settings: Settings) -> None:
    _worker.update(loader=Loader(root, env=env), settings=settings)


def _evaluate_chunk(chunk: list[tuple[str, str]]) -> list[tuple[str, Shipped | None]]:
    """Evaluate a run of neighbouring units (which share includes and account files) in a
    worker, each shipped as the cache's data (cheaper to send, and ready to store); a unit
    that fails is None, evaluated again by the parent for its error."""
    loader, settings = _worker["loader"], _worker["settings"]
    for _, file in chunk:  # all parsed first, then all evaluated: each phase keeps the CPU's caches
        with contextlib.suppress(RefarchError):  # met again, and reported, when its unit is evaluated
            loader.body(Path(file), Records())
    done: list[tuple[str, Shipped | None]] = []
    for rel, file in chunk:
        try:
            unit, meta, key = _evaluate_new_unit(loader, Path(file), settings)
        except RefarchError:  # raised again in the parent, as one process raises it
            done.append((rel, None))
        else:
            done.append((rel, (unit_to_dict(unit), meta, key)))
    return done


def _evaluate_in_parallel(
    root: Path, env: Mapping[str, str], settings: Settings, todo: Mapping[str, Path], jobs: int | None
) -> dict[str, Shipped | None]:
    """Parse and evaluate the units in `jobs` worker processes (all cores by default), each
    taking runs of neighbouring folders; {} when there are too few to be worth it."""
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    if jobs <= 1 or len(todo) < PARALLEL_THRESHOLD:
        return {}
    items = [(rel, str(file)) for rel, file in todo.items()]
    size = -(-len(items) // (jobs * 4))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415 - multiprocessing: cold loads only

    load_parser()  # once here, not once per worker: forked workers inherit it
    evaluated: dict[str, Shipped | None] = {}
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(chunks)), initializer=_start_worker, initargs=(root, env, settings)
    ) as pool:
        for done in pool.map(_evaluate_chunk, chunks):
            evaluated.update(done)
    return evaluated


# -- parallel parsing ---------------------------------------------------------------------------
def _parse_one(path: str) -> tuple[str, Any, str]:
    try:
        data = read_bounded(Path(path))
    except UnreadableFile as exc:
        return path, ("error", exc.detail, None, None, None), ""
    digest = hashlib.sha256(data).hexdigest()
    try:
        return path, parse_config(data.decode("utf-8"), Path(path).name), digest
    except HclSyntaxError as exc:
        return path, ("error", exc.detail, exc.line, exc.column, exc.hint), digest
    except UnicodeDecodeError:
        return path, ("error", "not UTF-8 text", None, None, None), digest


def _parse_in_parallel(loader: Loader, files: Iterable[Path], jobs: int | None) -> None:
    files = list(files)
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    if jobs <= 1 or len(files) < PARALLEL_THRESHOLD:
        return  # parsed lazily, in this process, as units are evaluated
    chunk = max(1, len(files) // (jobs * 8))
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415 - multiprocessing: cold loads only

    load_parser()  # once here, not once per worker: forked workers inherit it
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for path, body, digest in pool.map(_parse_one, [str(f) for f in files], chunksize=chunk):
            if isinstance(body, tuple) and body and body[0] == "error":
                _, detail, line, column, hint = body
                raise HclSyntaxError(detail, path=loader.rel(Path(path)), line=line, column=column, hint=hint)
            loader.preload(Path(path), _as_body(body), digest)
            loader.parse_count += 1


def _as_body(body: Any) -> Body:
    return tuple(body)
