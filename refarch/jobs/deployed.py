"""`--changed-since deployed`: the units changed since their last successful apply, as the
ledger (the shared one in CI) records it, so a failed pipeline's changes are not lost."""

from __future__ import annotations

from collections.abc import Mapping

from refarch.changes import ChangeSet, undeployed
from refarch.models import Action, Repo, Status
from refarch.runner.history import history, open_store


def last_deployed(repo: Repo, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """unit -> configuration digest of its newest successful apply (a later destroy forgets it)."""
    deployed: dict[str, str] = {}
    for row in history(open_store(repo.root, endpoint_url=repo.settings.endpoint_url, env=env)):
        if row.status not in (Status.SUCCEEDED, Status.DONE_BEFORE) or not row.digest:
            continue
        if row.action == Action.APPLY:
            deployed[row.unit] = row.digest
        elif row.action == Action.DESTROY:
            deployed.pop(row.unit, None)
    return deployed


def changes_since_deployed(repo: Repo, env: Mapping[str, str] | None = None) -> ChangeSet:
    """The units whose configuration differs from their last successful apply, and dependents."""
    return undeployed(repo, last_deployed(repo, env))
