"""Generate Terragrunt stacks with remote sources fetched as module sources are.

`refarch.config.stacks` does the work and takes the fetcher as a parameter (config sits below
the engines); this composition hands it the terraform engine's git fetcher, so a stack's
`git::` / `github.com/...` sources are cloned once per URL and ref into
`<root>/.refarch/work/.sources`, the same cache the modules use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from refarch import files
from refarch.config.discover import repo_root
from refarch.config.stacks import SKIP_DIRS, STACK_DIR, STACK_FILE, Fetcher, StacksResult, read_stack_file
from refarch.config.stacks import generate_stacks as _generate
from refarch.engines.workdir import SOURCES_DIR, GitCloner, parse_source
from refarch.errors import ConfigError, ModuleSourceError, UsageError

WORK_DIR = Path(".refarch") / "work"


def generate_stacks(root: str | Path, *, env: Mapping[str, str] | None = None) -> StacksResult:
    """Generate every terragrunt.stack.hcl below `root` into its .terragrunt-stack folder,
    as `terragrunt stack generate` does. `refarch.load_repo` does not call this: call it first
    (the CLI's graph, plan and run commands do) when the repo has stacks."""
    root = Path(root).resolve()
    env = dict(os.environ) if env is None else env
    return _generate(root, env=env, fetch=git_fetcher(root / WORK_DIR / SOURCES_DIR, env))


def git_fetcher(sources_dir: Path, env: Mapping[str, str], cloner: GitCloner | None = None) -> Fetcher:
    """A fetcher for stack sources: a git URL (with `//subdir` and `?ref=`) -> the folder."""
    git = cloner or GitCloner()

    def fetch(source: str) -> Path:
        parsed = parse_source(source)
        if parsed.kind != "git":
            raise ConfigError(f"source {source} does not exist")
        clone = git.fetch(parsed, sources_dir, env)
        folder = clone / parsed.subdir if parsed.subdir else clone
        if not folder.is_dir():
            raise ModuleSourceError(
                None,
                source,
                f"folder {parsed.subdir!r} does not exist in the repository",
                hint="fix the part after '//'",
            )
        return folder

    return fetch


def clean_stacks(root: str | Path) -> list[Path]:
    """Delete every .terragrunt-stack folder below `root` (what `stack generate` made), as
    `terragrunt stack clean` does; never follows a symlink. Returns the folders deleted."""
    root = Path(root).resolve()
    deleted: list[Path] = []
    for folder, dirs, _ in os.walk(root):
        if STACK_DIR in dirs:
            target = Path(folder) / STACK_DIR
            files.remove(target)
            deleted.append(target)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
    return deleted


def stack_unit_names(stack_dir: str | Path) -> dict[str, str]:
    """The units a generated stack holds, by their names as `terragrunt stack output` shows
    them ("app", a nested stack's "stack.app") -> their folder (absolute). Reads the stack
    files, so run it after generating."""
    names: dict[str, str] = {}
    todo = [(Path(stack_dir).resolve(), "")]
    while todo:
        folder, prefix = todo.pop()
        file = folder / STACK_FILE
        if not file.is_file():
            continue
        config = read_stack_file(file, root=repo_root(folder), env=dict(os.environ))
        for c in config.components:
            if not c.enabled:
                continue
            dest = (folder if c.no_dot_terragrunt_stack else folder / STACK_DIR) / os.path.normpath(c.path)
            if c.kind == "stack":
                todo.append((dest, f"{prefix}{c.name}."))
            else:
                names[f"{prefix}{c.name}"] = str(dest)
    return names


def stack_outputs(stack_dir: str | Path, outputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`outputs` (by unit path from the repo root, as a RunReport has them) by the stack's
    unit names, nested stacks nested: {"app": {...}, "nested": {"db": {...}}}, as
    `terragrunt stack output` aggregates them. Units without outputs are left out."""
    folder = Path(stack_dir).resolve()
    root = repo_root(folder)
    result: dict[str, Any] = {}
    for name, path in sorted(stack_unit_names(folder).items()):
        rel = Path(path).relative_to(root).as_posix()
        if rel not in outputs:
            continue
        *parents, last = name.split(".")
        target = result
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = dict(outputs[rel])
    return result


def lookup(value: Mapping[str, Any], key: str) -> Any:
    """`stack output KEY`: "app" or "app.id" (or "nested.db.endpoint") in `stack_outputs`."""
    current: Any = value
    for part in key.split("."):
        if not isinstance(current, Mapping) or part not in current:
            raise UsageError(f"the stack has no output {key!r}", hint="run without a key to see them all")
        current = current[part]
    return current
