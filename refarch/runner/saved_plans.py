"""Saved plans: `plan-all --out-dir` keeps each unit's plan and summary; `apply --plan-dir`
applies exactly those, after refusing any that is missing or older than its unit.

The folder (PLANDIR) holds, per unit, `<slug>.tfplan` (Terraform's binary plan: it can hold
secrets) and `<slug>.json` (what it changes, and what it was made from); for the run,
`summary.json` and `summary.md` (a pull-request comment). The folder is 0700, every file 0600.
The summaries and the markdown are pure functions of data; the few file helpers are here too.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refarch.engines.plan_file import PlanChanges, prior_state
from refarch.engines.workdir import unit_slug
from refarch.errors import RefarchError, StalePlan, UsageError
from refarch.files import check_ours, chmod, read_text, remove, write_atomic
from refarch.models import Action, RunReport, Unit

SCHEMA_VERSION = 1
PLAN_SUFFIX = ".tfplan"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
COUNTS = ("add", "change", "destroy", "outputs")
NOTHING_TO_APPLY = "the saved plan has no changes: nothing applied"


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
) -> dict[str, Any]:
    """One unit's summary: what its plan changes, and what it was made from (the unit's
    configuration digest, the state serial/lineage, the versions, the dependencies whose
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
            row.update({k: v for k, v in saved.items() if k not in ("schema_version", "unit", "account")})
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
    versions = ", ".join(summary.get("terraform_versions") or ()) or "unknown"
    lines.append(
        f"Run `{summary['run_id']}` · refarch {summary['refarch_version']} · Terraform {versions} · "
        f"{summary['engine']} engine"
    )
    if apply_command:
        lines += ["", f"Apply exactly these plans with `{apply_command}`."]
    return "\n".join(lines) + "\n"


def stale_reasons(
    units: Iterable[Unit], saved: Mapping[str, Mapping[str, Any] | None], plan_files: Mapping[str, bool]
) -> dict[str, str]:
    """Why each unit may not be applied from PLANDIR (pure): no summary, no plan file, an
    unknown summary format, or a configuration that changed since the plan was made."""
    problems: dict[str, str] = {}
    for unit in units:
        found = saved.get(unit.path)
        if found is None:
            problems[unit.path] = "no saved plan (it was not planned, or its plan failed)"
        elif found.get("schema_version") != SCHEMA_VERSION:
            problems[unit.path] = f"its plan summary has schema_version {found.get('schema_version')!r}"
        elif found.get("digest") != unit.digest:
            problems[unit.path] = "its configuration changed since the plan was made"
        elif found.get("has_changes") and not plan_files.get(unit.path):
            problems[unit.path] = "its plan file is missing"
        elif found.get("has_changes") and found.get("mocked_dependencies"):
            problems[unit.path] = (
                f"it was planned with the mock outputs of {', '.join(found['mocked_dependencies'])} "
                "(not applied yet): apply that first"
            )
    return problems


# -- the folder ------------------------------------------------------------------------------
@dataclass
class SavedPlans:
    """One run's view of PLANDIR: where each unit's plan goes, and (for apply) the summaries
    checked before anything ran."""

    folder: Path
    refarch_version: str
    checked: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def plan_file(self, unit_path: str) -> Path:
        return plan_path(self.folder, unit_path)

    def has_changes(self, unit_path: str) -> bool:
        """apply: whether the unit's checked plan changes anything (unknown: True)."""
        return bool(self.checked.get(unit_path, {}).get("has_changes", True))

    def clear(self, unit_paths: Iterable[str]) -> None:
        """Remove the units' earlier plans and summaries before they are planned again: a plan
        that fails now must not leave an older one to apply."""
        for path in unit_paths:
            remove(plan_path(self.folder, path))
            remove(summary_path(self.folder, path))

    def save(self, unit: Unit, changes: PlanChanges, *, mocked: Sequence[str] = ()) -> dict[str, Any]:
        """After a successful `plan -out`: the plan file made 0600, its summary written."""
        plan_file = self.plan_file(unit.path)
        chmod(plan_file, 0o600)
        document = unit_summary(
            unit,
            changes,
            plan_file=plan_file.name,
            state=prior_state(plan_file),
            refarch_version=self.refarch_version,
            created=time.time(),
            mocked=mocked,
        )
        write_atomic(summary_path(self.folder, unit.path), json.dumps(document, indent=2) + "\n")
        return document

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
        files = {u.path: self.plan_file(u.path).is_file() for u in units}
        problems = stale_reasons(units, saved, files)
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
    action: Action, out_dir: Path | None, plan_dir: Path | None, refarch_version: str
) -> SavedPlans | None:
    """The run's SavedPlans: `out_dir` only with plan, `plan_dir` only with apply."""
    if out_dir is not None and plan_dir is not None:
        raise UsageError(
            "--out-dir and --plan-dir do not go together", hint="plan-all --out-dir, then apply --plan-dir"
        )
    if out_dir is not None:
        if action != Action.PLAN:
            raise UsageError(f"--out-dir saves plans: it goes with plan-all, not {action}")
        return SavedPlans(prepare_folder(out_dir), refarch_version)
    if plan_dir is not None:
        if action != Action.APPLY:
            raise UsageError(f"--plan-dir applies saved plans: it goes with apply, not {action}")
        return SavedPlans(open_folder(plan_dir), refarch_version)
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
