"""Saved Terraform plans: what a `terraform show -json PLANFILE` document changes, and which
state a plan file was made against. Pure reads; the engines run the commands."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Terraform's own summary ("Plan: 1 to add, 0 to change, 1 to destroy") counts a replacement
# as one add and one destroy, and leaves data source reads and no-ops out; so do we.
_COUNTED = {
    ("create",): ("add",),
    ("update",): ("change",),
    ("delete",): ("destroy",),
    ("delete", "create"): ("add", "destroy"),
    ("create", "delete"): ("add", "destroy"),
}


@dataclass(frozen=True)
class PlanChanges:
    """What one saved plan would do: resources to add / change / destroy (as Terraform counts
    them) and root outputs it would create, change or remove."""

    add: int = 0
    change: int = 0
    destroy: int = 0
    outputs: int = 0
    terraform_version: str | None = None  # of the Terraform that made the plan

    @property
    def has_changes(self) -> bool:
        """Applying it would change something: a resource or an output."""
        return bool(self.add or self.change or self.destroy or self.outputs)


def changes_of(document: Mapping[str, Any]) -> PlanChanges:
    """The counts of a `terraform show -json PLANFILE` document (its resource_changes and
    output_changes). Only counts are kept: the document's values may be secrets."""
    counts = {"add": 0, "change": 0, "destroy": 0}
    for item in document.get("resource_changes") or ():
        if not isinstance(item, Mapping) or item.get("mode", "managed") != "managed":
            continue
        change = item.get("change")
        actions = change.get("actions") if isinstance(change, Mapping) else None
        for kind in _COUNTED.get(tuple(actions) if isinstance(actions, Sequence) else (), ()):
            counts[kind] += 1
    outputs = 0
    for change in (document.get("output_changes") or {}).values():
        actions = change.get("actions") if isinstance(change, Mapping) else None
        if isinstance(actions, Sequence) and list(actions) not in (["no-op"], ["read"]):
            outputs += 1
    version = document.get("terraform_version")
    return PlanChanges(**counts, outputs=outputs, terraform_version=str(version) if version else None)


def json_object(lines: Sequence[str]) -> dict[str, Any] | None:
    """The JSON object a tool printed as `lines` (a wrapper's log lines before it are
    skipped); None when they hold none."""
    text = "\n".join(lines)
    start = text.find("{")
    try:
        document = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def prior_state(plan_file: Path) -> tuple[int, str] | None:
    """(serial, lineage) of the state `plan_file` was made against, from the state snapshot
    Terraform keeps inside it (`tfstate` in the plan's zip); None when it is not a Terraform
    plan file or was made against no state (Terraform does not check those for staleness)."""
    try:
        with zipfile.ZipFile(plan_file) as archive:
            state = json.loads(archive.read("tfstate"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    if not isinstance(state, Mapping) or not state.get("lineage"):
        return None
    return int(state.get("serial") or 0), str(state["lineage"])
