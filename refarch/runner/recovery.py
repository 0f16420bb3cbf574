"""Terraform's recovery state is never deleted: moved aside, recorded, and pushed back on request.

When Terraform cannot save state (the backend became unreachable mid-apply) it writes
`errored.tfstate` in its working folder. The unit runner moves every such file to
`.refarch/recovery/<run-id>/<unit>/` (0600 files in 0700 folders) before any attempt could
rebuild that folder, records it in the ledger, and stops retrying the unit (another apply
would fork the state). `refarch recover DIR` pushes the files back with `terraform state push`,
and so does `--resume` before it runs such a unit again (push_back).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from refarch.engines import Engine, UnitJob
from refarch.engines.workdir import unit_slug
from refarch.errors import RefarchError

RECOVERY_DIR = Path(".refarch") / "recovery"
PUSHED_SUFFIX = ".pushed"  # a file pushed back is renamed, never deleted


def recover_command(root: Path, run_id: str, unit: str) -> str:
    """The command that pushes a unit's moved-aside state back to its backend."""
    return f"refarch recover {root} --run {run_id} --unit {unit}"


def recovery_folder(root: Path, run_id: str, unit: str) -> Path:
    return root / RECOVERY_DIR / run_id / unit_slug(unit)


def move_aside(files: Iterable[Path], target: Path) -> list[Path]:
    """Move each file into `target` (created 0700), 0600, never overwriting another: a second
    file of the same name gets a numbered suffix."""
    moved: list[Path] = []
    for source in files:
        if source.is_symlink() or not source.is_file():
            continue
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        target.chmod(0o700)
        destination = target / source.name
        number = 1
        while destination.exists():
            number += 1
            destination = target / f"{source.stem}.{number}{source.suffix}"
        shutil.move(source, destination)
        destination.chmod(0o600)  # a regular file just moved here, not a link
        moved.append(destination)
    return moved


def pending_recovery(root: Path, unit: str) -> list[Path]:
    """Moved-aside state of `unit`, from any run, not yet pushed back: while there is some,
    the unit must not run (an apply would fork its state)."""
    folder = root / RECOVERY_DIR
    if not folder.is_dir():
        return []
    found = [
        p
        for p in folder.glob(f"*/{unit_slug(unit)}/*")
        if p.is_file() and ".tfstate" in p.name and not p.name.endswith(PUSHED_SUFFIX)
    ]
    # Oldest first: run ids sort by time, and within a run a later file was moved later.
    return sorted(found, key=lambda p: (p.parent.parent.name, p.stat().st_mtime_ns, p.name))


def mark_pushed(path: Path) -> Path:
    """Rename a pushed file so that it no longer blocks its unit (kept for the record)."""
    done = path.with_name(path.name + PUSHED_SUFFIX)
    path.rename(done)
    return done


@dataclass(frozen=True)
class PushResult:
    """One moved-aside state file and how pushing it back went."""

    unit: str
    file: Path  # renamed *.pushed when ok
    ok: bool
    message: str


def push_back(engine: Engine, job: UnitJob, files: Iterable[Path]) -> list[PushResult]:
    """`terraform state push FILE` for each file in turn, in the unit's working folder and
    through its backend; a pushed file is renamed `*.pushed`. Stops at the first failure
    (a later file must not be pushed over a state that is still missing)."""
    results: list[PushResult] = []
    for file in files:
        try:
            result = engine.terraform_command(job, ["state", "push", str(file)])
            ok, message = result.ok, result.output_tail[-2000:]
        except RefarchError as exc:
            ok, message = False, str(exc)
        results.append(PushResult(job.unit.path, mark_pushed(file) if ok else file, ok, message))
        if not ok:
            break
    return results
