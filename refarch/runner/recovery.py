"""Terraform's recovery state is never deleted: moved aside, recorded, and pushed back on request.

When Terraform cannot save state (the backend became unreachable mid-apply) it writes
`errored.tfstate` in its working folder. The unit runner moves every such file to
`.refarch/recovery/<run-id>/<unit>/` (0600 files in 0700 folders) before any attempt could
rebuild that folder, records it in the ledger, and stops retrying the unit (another apply
would fork the state). `refarch recover DIR` pushes the files back with `terraform state push`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from refarch.engines.workdir import unit_slug

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
    return sorted(
        p
        for p in folder.glob(f"*/{unit_slug(unit)}/*")
        if p.is_file() and ".tfstate" in p.name and not p.name.endswith(PUSHED_SUFFIX)
    )


def mark_pushed(path: Path) -> Path:
    """Rename a pushed file so that it no longer blocks its unit (kept for the record)."""
    done = path.with_name(path.name + PUSHED_SUFFIX)
    path.rename(done)
    return done
