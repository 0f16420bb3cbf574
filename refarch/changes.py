"""Which units a git change touches: their own files, anything they read, and their dependents.

A unit is *changed* when, since REF, git shows a change to a file in its folder, to a file its
evaluation read (included files, `_envcommon`, `read_terragrunt_config` targets, account and
region files: `Unit.files`, recorded by the evaluator), to its local module source, to the
repo's refarch.toml, or a new configuration file appears in one of its parent folders (where
`find_in_parent_folders` looks). Units that depend on a changed unit are selected too. A unit
whose terragrunt.hcl is gone is reported as needing a destroy; refarch never destroys it by itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from refarch.errors import ToolNotFound, UsageError
from refarch.exec.process import capture
from refarch.models import Repo
from refarch.settings import SETTINGS_FILE

UNIT_FILE = "terragrunt.hcl"
PROBED_SUFFIXES = (".hcl", ".json", ".yaml", ".yml")  # what find_in_parent_folders finds
TOOL_FOLDERS = {".refarch", ".terragrunt-cache", ".terraform"}  # never configuration
_REMOTE = ("::", "://", "git@")


@dataclass(frozen=True)
class FileChange:
    """One path git reports between REF and the working tree, relative to the live repo root."""

    status: str  # A (added, or untracked), M (modified), D (deleted), T (type changed)
    path: str  # POSIX, relative to the live repo root; "../x" for files outside it


DEPLOYED = "deployed"  # --changed-since deployed: since each unit's last successful apply


@dataclass(frozen=True)
class ChangeSet:
    """The units a change since `ref` selects, and why."""

    ref: str
    files: tuple[FileChange, ...]
    changed: tuple[str, ...]  # units whose files, or what they read, changed
    dependents: tuple[str, ...]  # units selected because they depend on a changed unit
    deleted: tuple[str, ...]  # unit folders whose terragrunt.hcl is gone: destroy by hand
    reasons: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # unit -> changed paths

    @property
    def selected(self) -> tuple[str, ...]:
        """Changed units and their dependents, sorted."""
        return tuple(sorted({*self.changed, *self.dependents}))


def git_files(root: Path, ref: str, env: Mapping[str, str] | None = None) -> tuple[FileChange, ...]:
    """What changed between `ref` (its merge base with HEAD) and the working tree, untracked
    files included, as paths relative to `root`. Renames count as a delete and an add."""
    env = dict(os.environ if env is None else env)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    top = _git(["rev-parse", "--show-toplevel"], root, env, ref).strip()
    base = _git(["merge-base", ref, "HEAD"], root, env, ref).strip()
    # -z: NUL-separated, so the whole list is one line of output (capture keeps the last lines)
    diff = _git(["diff", "--name-status", "--no-renames", "-z", base, "--"], root, env, ref)
    untracked = _git(["ls-files", "--others", "--exclude-standard", "-z"], Path(top), env, ref)
    fields = diff.split("\0")
    pairs = [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]
    pairs += [("A", name) for name in untracked.split("\0") if name]
    resolved_root = root.resolve()
    changes = []
    for status, name in pairs:
        rel = os.path.relpath(Path(top, name), resolved_root)
        changes.append(FileChange(status[:1], PurePosixPath(Path(rel).as_posix()).as_posix()))
    return tuple(sorted(set(changes), key=lambda c: c.path))


def git_toplevel(path: Path, env: Mapping[str, str] | None = None) -> Path | None:
    """The root of the git repository holding `path`, or None outside one (or without git)."""
    env = dict(os.environ if env is None else env)
    try:
        result = capture(["git", "rev-parse", "--show-toplevel"], cwd=path, env=env)
    except ToolNotFound:
        return None
    return Path(result.stdout_tail.strip()) if result.ok else None


def _git(args: Sequence[str], root: Path, env: Mapping[str, str], ref: str) -> str:
    result = capture(["git", *args], cwd=root, env=env)
    if not result.ok:
        why = result.stderr_tail.strip().splitlines() or [f"exit code {result.returncode}"]
        raise UsageError(
            f"--changed-since {ref}: `git {' '.join(args[:2])}` failed in {root}: {why[-1]}",
            hint="pass a commit, branch or tag that exists here (in CI, fetch it first: "
            "actions/checkout with fetch-depth: 0, or GIT_DEPTH: 0)",
        )
    return result.stdout_tail


def changed_units(repo: Repo, files: Iterable[FileChange], ref: str = "") -> ChangeSet:
    """The units `files` touch (see the module docstring). Pure: no git, no I/O."""
    files = tuple(files)
    units = repo.units
    folders = sorted(units, key=lambda p: -len(p))  # deepest first: a file belongs to its nearest unit
    reads = {p: {_norm(f) for f in u.files} for p, u in units.items()}
    modules = {p: m for p, u in units.items() if (m := _local_module(repo.root, p, u.source)) is not None}
    reasons: dict[str, list[str]] = {}
    deleted: list[str] = []

    def mark(unit: str, path: str) -> None:
        reasons.setdefault(unit, []).append(path)

    for change in files:
        path = _norm(change.path)
        if TOOL_FOLDERS.intersection(PurePosixPath(path).parts):
            continue
        if change.status == "D" and PurePosixPath(path).name == UNIT_FILE:
            folder = str(PurePosixPath(path).parent)
            if folder not in units:
                deleted.append(folder)
                continue
        if path == SETTINGS_FILE:
            for unit in units:
                mark(unit, path)
            continue
        owner = next((u for u in folders if _under(path, u)), None)
        if owner is not None:
            mark(owner, path)
        for unit in units:
            if unit == owner:
                continue
            read = path in reads[unit] or (unit in modules and _under(path, modules[unit]))
            if read or (change.status == "A" and _probed(path, unit)):
                mark(unit, path)
    changed = sorted(reasons)
    dependents = sorted(_dependents(repo, changed) - set(changed))
    return ChangeSet(
        ref=ref,
        files=files,
        changed=tuple(changed),
        dependents=tuple(dependents),
        deleted=tuple(sorted(set(deleted))),
        reasons={u: tuple(r) for u, r in sorted(reasons.items())},
    )


def undeployed(repo: Repo, deployed: Mapping[str, str], also: Iterable[str] = ()) -> ChangeSet:
    """The units whose configuration digest differs from the one of their last successful
    apply (`deployed`: unit -> digest; a unit missing there was never deployed), the units in
    `also` (changed otherwise: their module), plus their dependents: `--changed-since
    deployed`. Pure."""
    changed = sorted(
        {p for p, u in repo.units.items() if deployed.get(p) != u.digest} | (set(also) & set(repo.units))
    )
    dependents = sorted(_dependents(repo, changed) - set(changed))
    return ChangeSet(ref=DEPLOYED, files=(), changed=tuple(changed), dependents=tuple(dependents), deleted=())


def changes_since(repo: Repo, ref: str, env: Mapping[str, str] | None = None) -> ChangeSet:
    """The units changed in git since `ref`, plus their dependents (see `changed_units`)."""
    return changed_units(repo, git_files(repo.root, ref, env), ref)


def selection(change: ChangeSet, repo: Repo) -> tuple[list[str], list[str]]:
    """`--include` / `--exclude` patterns (with `--ignore-dependencies`) that select exactly
    the change's units: their paths, and any unit nested below one of them left out."""
    selected = set(change.selected)
    include = sorted(selected)
    exclude = sorted(
        p for p in repo.units if p not in selected and any(p.startswith(s + "/") for s in selected)
    )
    return include, exclude


def subrepo(repo: Repo, paths: Iterable[str]) -> Repo:
    """The repo with only `paths` as units (dependency edges to others dropped): for a graph."""
    keep = set(paths)
    units = {
        p: replace(u, dependencies=tuple(d for d in u.dependencies if d in keep))
        for p, u in repo.units.items()
        if p in keep
    }
    accounts = tuple(
        replace(a, units=tuple(u for u in a.units if u in keep))
        for a in repo.accounts
        if any(u in keep for u in a.units)
    )
    return replace(repo, units=units, accounts=accounts)


# -- helpers ------------------------------------------------------------------------------------
def _norm(path: str) -> str:
    return os.path.normpath(path).replace(os.sep, "/")


def _under(path: str, folder: str) -> bool:
    return folder in (".", path) or path.startswith(folder + "/")


def _probed(path: str, unit: str) -> bool:
    """A new config file in the unit's folder or a parent folder (up to the repo root)."""
    pure = PurePosixPath(path)
    if pure.suffix not in PROBED_SUFFIXES or path.startswith("../"):
        return False
    parent = str(pure.parent)
    return parent == "." or _under(unit, parent)


def _local_module(root: Path, unit: str, source: str | None) -> str | None:
    """A unit's local module source as a folder relative to the repo root (the whole source
    root, as the engine copies it), or None for a remote one."""
    if not source or any(marker in source for marker in _REMOTE) or source.startswith("github.com/"):
        return None
    body = source.split("?", 1)[0]
    top = body.split("//", 1)[0] or body
    folder = Path(top) if Path(top).is_absolute() else root / unit / top
    return _norm(os.path.relpath(folder, root))


def _dependents(repo: Repo, units: Sequence[str]) -> set[str]:
    """Every unit that depends, directly or not, on one of `units`."""
    reverse: dict[str, list[str]] = {}
    for path, unit in repo.units.items():
        for dep in unit.dependencies:
            reverse.setdefault(dep, []).append(path)
    found: set[str] = set()
    todo = list(units)
    while todo:
        for nxt in reverse.get(todo.pop(), []):
            if nxt not in found:
                found.add(nxt)
                todo.append(nxt)
    return found
