"""Saved plans: `plan-all --out-dir` keeps each unit's plan and summary; `apply --plan-dir`
applies exactly those, after refusing any that is missing or older than its unit.

The folder (PLANDIR) holds, per unit, `<slug>.tfplan` (Terraform's binary plan: it can hold
secrets) and `<slug>.json` (what it changes, and what it was made from); for the run,
`summary.json` and `summary.md` (a pull-request comment). The folder is 0700, every file 0600.
The summaries and the markdown are pure functions of data; the few file helpers are here too.

A saved plan is bound to what it was made from: its summary records the plan file's SHA-256,
the SHA-256 of every file of the unit's module tree (a local source, or the unit folder; the
configuration files the unit read are in its digest) and a digest of each dependency's outputs
it was planned with. `apply --plan-dir` refuses, before anything runs, a plan file that is not
the one planned, or a unit whose configuration or module changed; and before applying each
unit it compares its dependencies' outputs now (an earlier unit of the same apply may have
changed them) with those it was planned with: a difference makes the plan stale (re-plan),
never "no changes".
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refarch.engines.plan_file import PlanChanges, prior_state
from refarch.engines.workdir import COPY_IGNORE, parse_source, unit_slug
from refarch.errors import RefarchError, StalePlan, UsageError
from refarch.files import check_ours, chmod, read_text, remove, write_atomic
from refarch.models import Action, RunReport, Unit

SCHEMA_VERSION = 2  # 2: plan_sha256, module_files, dependency_outputs
PLAN_SUFFIX = ".tfplan"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
COUNTS = ("add", "change", "destroy", "outputs")
NOTHING_TO_APPLY = "the saved plan has no changes: nothing applied"
STALE_PLAN = "Saved plan is stale"  # Terraform: the state moved since the plan was made
IN_PLACE = (
    "its saved plan is stale (the state moved since it was made) and a fresh plan changes nothing: "
    "the reviewed changes are in place, nothing left to apply"
)
CHUNK = 1 << 20
ROW_SKIPS = ("schema_version", "unit", "account", "module_files")  # summary.json: a digest instead


def file_sha256(path: Path) -> str | None:
    """The SHA-256 of a file's bytes (never through a symlink), or None when it is missing."""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def module_root(unit: Unit, repo_root: Path, source_override: Path | None = None) -> Path | None:
    """The folder whose tree is copied as the unit's module (the part of a local source
    before `//`, the override, or the unit folder); None for a git source, whose `?ref=`
    is part of the unit's configuration digest."""
    unit_dir = (repo_root / unit.path).resolve()
    if source_override is not None:
        return Path(source_override).expanduser().resolve()
    if not unit.source:
        return unit_dir
    source = parse_source(unit.source)
    if source.kind != "local":
        return None
    path = Path(source.root).expanduser()
    return (path if path.is_absolute() else unit_dir / path).resolve()


def module_files(root: Path | None) -> dict[str, str] | None:
    """SHA-256 of every file of the module tree at `root` (relative POSIX path -> digest),
    as refarch copies it (without .terraform, .terragrunt-cache, state files...); a symlink
    counts by its target's name, never followed."""
    if root is None:
        return None
    found: dict[str, str] = {}
    for path in _tree(root):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[relative] = "symlink:" + str(path.readlink())
        else:
            found[relative] = file_sha256(path) or "unreadable"
    return found


def _tree(root: Path) -> Iterator[Path]:
    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in COPY_IGNORE)

    for folder, dirs, files in os.walk(root):  # never follows a symlinked folder
        base = Path(folder)
        dirs[:] = sorted(d for d in dirs if not ignored(d))
        for name in sorted(files):
            if not ignored(name):
                yield base / name
        for name in dirs:
            if (base / name).is_symlink():
                yield base / name


def outputs_digest(outputs: Mapping[str, Any]) -> str:
    """A digest of one dependency's outputs (the summary keeps no output values)."""
    text = json.dumps(outputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def changed_files(then: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """The files added, removed or changed between two module_files maps."""
    return sorted(name for name in set(then) | set(now) if then.get(name) != now.get(name))


# A saved plan's checks (policy, drift): its `show -json` document in, keys for its summary out.
PlanInspector = Callable[[Unit, Mapping[str, Any]], Mapping[str, Any]]


def prepare_folder(path: Path) -> Path:
    """PLANDIR for `plan-all --out-dir`, absolute: created 0700, or an existing folder of this
    user's (never a symlink) made 0700, since the plans in it can hold secrets."""
    folder = Path(path).absolute()
    if not os.path.lexists(folder):
        folder.mkdir(mode=0o700, parents=True)
    check_ours(folder)
    if not folder.is_dir():
        raise UsageError(
            f"--out-dir {folder} is not a folder", hint="name a folder (it is created if missing)"
        )
    if stat.S_IMODE(folder.stat().st_mode) & 0o077:
        chmod(folder, 0o700)
    return folder


def open_folder(path: Path) -> Path:
    """PLANDIR for `apply --plan-dir`, absolute; it must exist and be this user's."""
    folder = Path(path).absolute()
    if not folder.is_dir():
        raise UsageError(
            f"--plan-dir {folder} is not a folder of saved plans",
            hint="make it with `refarch plan-all DIR --out-dir PLANDIR` first",
        )
    return check_ours(folder)


def plan_path(folder: Path, unit_path: str) -> Path:
    """Where the unit's binary plan goes."""
    return folder / f"{unit_slug(unit_path)}{PLAN_SUFFIX}"


def summary_path(folder: Path, unit_path: str) -> Path:
    """Where the unit's JSON summary goes."""
    return folder / f"{unit_slug(unit_path)}.json"


# -- pure: the documents ---------------------------------------------------------------------
def unit_summary(
    unit: Unit,
    changes: PlanChanges,
    *,
    plan_file: str,
    state: tuple[int, str] | None,
    refarch_version: str,
    created: float,
    mocked: Sequence[str] = (),
    plan_sha256: str | None = None,
    modules: Mapping[str, str] | None = None,
    dependency_outputs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One unit's summary: what its plan changes, and what it was made from (the unit's
    configuration digest, the plan file's SHA-256, its module's files, the digests of its
    dependencies' outputs, the state serial/lineage, the versions, the dependencies whose
    mock outputs stood in for real ones)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "unit": unit.path,
        "account": unit.account,
        "plan_file": plan_file,
        "has_changes": changes.has_changes,
        **{name: getattr(changes, name) for name in COUNTS},
        "digest": unit.digest,
        "state_serial": state[0] if state else None,
        "state_lineage": state[1] if state else None,
        "mocked_dependencies": sorted(set(mocked)),
        "plan_sha256": plan_sha256,
        "module_files": None if modules is None else dict(sorted(modules.items())),
        "dependency_outputs": dict(sorted((dependency_outputs or {}).items())),
        "terraform_version": changes.terraform_version,
        "refarch_version": refarch_version,
        "created": _timestamp(created),
    }


def run_summary(
    report: RunReport, units: Mapping[str, Mapping[str, Any]], *, refarch_version: str
) -> dict[str, Any]:
    """The run's summary: each unit of the report with its plan summary (if it has one),
    totals over the units with changes, and the versions that made the plans."""
    rows = []
    for path, result in report.units.items():
        saved = units.get(path) if result.status.ok else None
        row: dict[str, Any] = {"unit": path, "account": result.account, "status": str(result.status)}
        if saved is not None:
            row.update(
                {
                    k: v
                    for k, v in saved.items()
                    if k not in ("schema_version", "unit", "account", "module_files")
                }
            )
            files = saved.get("module_files")
            row["module_digest"] = outputs_digest(files) if isinstance(files, dict) else None
        else:
            first = result.message.splitlines()[0] if result.message else ""
            row["message"] = first if not result.status.ok else "no plan summary was saved"
        rows.append(row)
    planned = [r for r in rows if "has_changes" in r]
    totals = {name: sum(int(r[name]) for r in planned) for name in COUNTS}
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": report.run_id,
        "engine": report.engine,
        "created": _timestamp(report.finished),
        "refarch_version": refarch_version,
        "terraform_versions": sorted(
            {str(r["terraform_version"]) for r in planned if r.get("terraform_version")}
        ),
        "terraform": dict(report.terraform),  # the binary that made them: path, version, source
        "complete": report.ok,
        "has_changes": any(r["has_changes"] for r in planned),
        "totals": {
            **totals,
            "units_with_changes": sum(1 for r in planned if r["has_changes"]),
            "units_without_changes": sum(1 for r in planned if not r["has_changes"]),
            "units_not_planned": len(rows) - len(planned),
        },
        "units": rows,
    }


def markdown(summary: Mapping[str, Any], *, apply_command: str | None = None) -> str:
    """The run summary as a pull-request comment: a row per unit with changes, the totals,
    the units that could not be planned, and the units without changes collapsed."""
    rows: list[Mapping[str, Any]] = summary["units"]
    changed = [r for r in rows if r.get("has_changes")]
    unchanged = [r for r in rows if r.get("has_changes") is False]
    failed = [r for r in rows if "has_changes" not in r]
    totals = summary["totals"]
    head = f"{len(changed)} unit(s) with changes, {len(unchanged)} without"
    if failed:
        head += f", {len(failed)} not planned"
    lines = [f"### refarch plan: {head}", ""]
    if changed:
        lines += [
            "| unit | account | add | change | destroy | outputs |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for row in changed:
            counts = " | ".join(str(row[name]) for name in COUNTS)
            lines.append(f"| {_code(row['unit'])} | {_cell(row['account'])} | {counts} |")
        lines.append("| **total** | | " + " | ".join(f"**{totals[name]}**" for name in COUNTS) + " |")
        lines.append("")
    else:
        lines += ["No changes in the units that were planned." if failed else "No changes.", ""]
    if failed:
        lines.append(f"**Not planned ({len(failed)}): these cannot be applied from this plan.**")
        lines.append("")
        for row in failed:
            why = f"{row['status']} {_cell(row.get('message', ''))}".rstrip()
            lines.append(f"- {_code(row['unit'])} ({_cell(row['account'])}): {why}")
        lines.append("")
    if unchanged:
        lines += [f"<details><summary>{len(unchanged)} unit(s) without changes</summary>", ""]
        lines += [f"- {_code(r['unit'])} ({_cell(r['account'])})" for r in unchanged]
        lines += ["", "</details>", ""]
    lines += policy_markdown(rows)
    versions = ", ".join(summary.get("terraform_versions") or ()) or "unknown"
    lines.append(
        f"Run `{summary['run_id']}` · refarch {summary['refarch_version']} · Terraform {versions} · "
        f"{summary['engine']} engine"
    )
    if apply_command:
        lines += ["", f"Apply exactly these plans with `{apply_command}`."]
    return "\n".join(lines) + "\n"


def policy_markdown(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The policy findings of the units' plans (refarch.policy), deny first; none: one line."""
    found = [(r, f) for r in rows for f in r.get("policy") or ()]
    checked = sum(1 for r in rows if "policy" in r)
    if not checked:
        return []
    if not found:
        return [f"Policy: no findings in {checked} plan(s).", ""]
    denied = sum(1 for _, f in found if f.get("effect") == "deny")
    lines = [
        f"**Policy: {len(found)} finding(s), {denied} deny** (apply refuses a unit with a deny finding "
        "unless refarch.toml waives the rule)",
        "",
        "| unit | rule | effect | resource | what |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row, finding in sorted(found, key=lambda item: (item[1].get("effect") != "deny", item[0]["unit"])):
        lines.append(
            f"| {_code(row['unit'])} | {_code(finding.get('rule'))} | {_cell(finding.get('effect'))} | "
            f"{_code(finding.get('address'))} | {_cell(finding.get('message'))} |"
        )
    return [*lines, ""]


def stale_reasons(
    units: Iterable[Unit],
    saved: Mapping[str, Mapping[str, Any] | None],
    plan_files: Mapping[str, str | None],
    modules: Mapping[str, Mapping[str, str] | None] | None = None,
) -> dict[str, str]:
    """Why each unit may not be applied from PLANDIR (pure): no summary, no plan file or
    another one than was planned (`plan_files`: each file's SHA-256, None when missing), an
    unknown summary format, a configuration or module (`modules`: module_files now) that
    changed since the plan was made."""
    problems: dict[str, str] = {}
    for unit in units:
        found = saved.get(unit.path)
        now = (modules or {}).get(unit.path)
        then = found.get("module_files") if found is not None else None
        if found is None:
            problems[unit.path] = "no saved plan (it was not planned, or its plan failed)"
        elif found.get("schema_version") != SCHEMA_VERSION:
            problems[unit.path] = (
                f"its plan summary has schema_version {found.get('schema_version')!r} "
                f"(this refarch writes {SCHEMA_VERSION}): plan again"
            )
        elif found.get("digest") != unit.digest:
            problems[unit.path] = "its configuration changed since the plan was made"
        elif isinstance(then, dict) and now is not None and (changed := changed_files(then, now)):
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            problems[unit.path] = f"its module changed since the plan was made ({shown})"
        elif found.get("has_changes") and not plan_files.get(unit.path):
            problems[unit.path] = "its plan file is missing"
        elif found.get("has_changes") and plan_files.get(unit.path) != found.get("plan_sha256"):
            problems[unit.path] = (
                "its plan file is not the one that was planned (its SHA-256 differs from the summary's)"
            )
        elif found.get("has_changes") and found.get("mocked_dependencies"):
            problems[unit.path] = (
                f"it was planned with the mock outputs of {', '.join(found['mocked_dependencies'])} "
                "(not applied yet): apply that first"
            )
    return problems


def stale_outputs(recorded: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """The dependencies whose outputs differ from those a plan was made with."""
    return sorted(dep for dep in set(recorded) | set(now) if recorded.get(dep) != now.get(dep))


# -- the folder ------------------------------------------------------------------------------
@dataclass
class SavedPlans:
    """One run's view of PLANDIR: where each unit's plan goes, and (for apply) the summaries
    checked before anything ran."""

    folder: Path
    refarch_version: str
    checked: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    repo_root: Path | None = None  # where units' module folders are found (the run's repo)
    source_override: Path | None = None  # --source: the module tree of every unit
    inspect: PlanInspector | None = None  # adds its keys to each unit's summary

    def plan_file(self, unit_path: str) -> Path:
        return plan_path(self.folder, unit_path)

    def has_changes(self, unit_path: str) -> bool:
        """apply: whether the unit's checked plan changes anything (unknown: True)."""
        return bool(self.checked.get(unit_path, {}).get("has_changes", True))

    def planned_outputs(self, unit_path: str) -> dict[str, str]:
        """apply: the digests of the dependency outputs the unit's plan was made with."""
        found = self.checked.get(unit_path, {}).get("dependency_outputs")
        return dict(found) if isinstance(found, dict) else {}

    def modules(self, unit: Unit) -> dict[str, str] | None:
        if self.repo_root is None:
            return None
        return module_files(module_root(unit, self.repo_root, self.source_override))

    def applied_by(self, unit_path: str) -> str | None:
        """apply: the run that already applied the unit's checked plan, if one did."""
        found = self.checked.get(unit_path, {}).get("applied_by")
        return str(found) if found else None

    def mark_applied(self, unit_path: str, run_id: str) -> None:
        """After its plan was applied: said in its summary, so that applying the folder again
        reports the unit as applied instead of failing on Terraform's "stale plan"."""
        document = self.load(unit_path)
        if document is not None:
            document["applied_by"] = run_id
            write_atomic(summary_path(self.folder, unit_path), json.dumps(document, indent=2) + "\n")

    def clear(self, unit_paths: Iterable[str]) -> None:
        """Remove the units' earlier plans and summaries before they are planned again: a plan
        that fails now must not leave an older one to apply."""
        for path in unit_paths:
            remove(plan_path(self.folder, path))
            remove(summary_path(self.folder, path))

    def save(
        self,
        unit: Unit,
        changes: PlanChanges,
        *,
        mocked: Sequence[str] = (),
        dependency_outputs: Mapping[str, str] | None = None,
        document: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """After a successful `plan -out`: the plan file made 0600, its summary written (with
        what `inspect` finds in the plan's `show -json` document)."""
        plan_file = self.plan_file(unit.path)
        chmod(plan_file, 0o600)
        summary = unit_summary(
            unit,
            changes,
            plan_file=plan_file.name,
            state=prior_state(plan_file),
            refarch_version=self.refarch_version,
            created=time.time(),
            mocked=mocked,
            plan_sha256=file_sha256(plan_file),
            modules=self.modules(unit),
            dependency_outputs=dependency_outputs,
        )
        if self.inspect is not None and document is not None:
            summary.update(self.inspect(unit, document))
        write_atomic(summary_path(self.folder, unit.path), json.dumps(summary, indent=2) + "\n")
        return summary

    def load(self, unit_path: str) -> dict[str, Any] | None:
        path = summary_path(self.folder, unit_path)
        if not path.is_file():
            return None
        try:
            document = json.loads(read_text(path))
        except (ValueError, RefarchError):
            return None
        return document if isinstance(document, dict) and document.get("unit") == unit_path else None

    def check(self, units: Sequence[Unit], command: str) -> None:
        """Before anything runs: every unit has a plan made from its current configuration;
        else StalePlan naming each one. Keeps the summaries for `has_changes`."""
        saved = {u.path: self.load(u.path) for u in units}
        files = {u.path: file_sha256(self.plan_file(u.path)) for u in units}
        problems = stale_reasons(units, saved, files, {u.path: self.modules(u) for u in units})
        if problems:
            raise StalePlan(self.folder, problems, command)
        self.checked = {path: found for path, found in saved.items() if found is not None}

    def write_summary(self, report: RunReport, *, apply_command: str | None = None) -> dict[str, Any]:
        """summary.json and summary.md of a plan run, from the units' summaries on disk (a
        resumed run's earlier units included)."""
        units = {path: found for path in report.units if (found := self.load(path)) is not None}
        document = run_summary(report, units, refarch_version=self.refarch_version)
        write_atomic(self.folder / SUMMARY_JSON, json.dumps(document, indent=2) + "\n")
        write_atomic(self.folder / SUMMARY_MD, markdown(document, apply_command=apply_command))
        return document


def for_run(
    action: Action,
    out_dir: Path | None,
    plan_dir: Path | None,
    refarch_version: str,
    *,
    repo_root: Path | None = None,
    source_override: Path | None = None,
    inspect: PlanInspector | None = None,
) -> SavedPlans | None:
    """The run's SavedPlans: `out_dir` only with plan, `plan_dir` only with apply."""
    if out_dir is not None and plan_dir is not None:
        raise UsageError(
            "--out-dir and --plan-dir do not go together", hint="plan-all --out-dir, then apply --plan-dir"
        )
    if out_dir is not None:
        if action != Action.PLAN:
            raise UsageError(f"--out-dir saves plans: it goes with plan-all, not {action}")
        return SavedPlans(
            prepare_folder(out_dir), refarch_version, {}, repo_root, source_override, inspect=inspect
        )
    if plan_dir is not None:
        if action != Action.APPLY:
            raise UsageError(f"--plan-dir applies saved plans: it goes with apply, not {action}")
        return SavedPlans(open_folder(plan_dir), refarch_version, {}, repo_root, source_override)
    return None


def planned_units(path: Path) -> list[str]:
    """The units with a saved plan in PLANDIR (from their summaries), sorted; [] when none."""
    folder = open_folder(path)
    found: set[str] = set()
    for summary in folder.glob("*.json"):
        if summary.name == SUMMARY_JSON:
            continue
        try:
            document = json.loads(read_text(summary))
        except (ValueError, RefarchError):
            continue
        if isinstance(document, dict) and isinstance(document.get("unit"), str):
            found.add(document["unit"])
    return sorted(found)


def identity(path: Path, unit_paths: Iterable[str]) -> str | None:
    """What identifies the saved plans of `unit_paths` in PLANDIR (a digest of their summaries,
    which name each plan's unit, digest, state and time), or None without any: a retried
    apply job tells "these plans were applied already" from "new plans" by it."""
    folder = Path(path).absolute()
    if not folder.is_dir():
        return None
    found = []
    for unit in sorted(unit_paths):
        summary = summary_path(folder, unit)
        if summary.is_file():
            try:
                found.append(f"{unit}\0{read_text(summary)}")
            except RefarchError:
                continue
    if not found:
        return None
    return hashlib.sha256("\0".join(found).encode()).hexdigest()[:32]


def _timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: Any) -> str:
    return f"`{_cell(text).replace('`', '')}`"
