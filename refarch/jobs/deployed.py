"""`--changed-since deployed`: the units changed since their last successful apply, as the
ledger (the shared one in CI) records it, so a failed pipeline's changes are not lost.

A unit changed when its configuration digest differs from the one its last successful apply
recorded, or when git says a file it depends on that the digest does not cover (its local
module) changed since the commit of that apply; a commit git does not know (a shallow clone)
counts as changed. Plus the units that depend on a changed one.
"""

from __future__ import annotations

from collections.abc import Mapping

from refarch.changes import ChangeSet, changed_units, git_files, undeployed
from refarch.errors import RefarchError
from refarch.models import Action, Repo, Status
from refarch.runner.history import history, open_store


def last_deployed(repo: Repo, env: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """unit -> (configuration digest, git commit) of its newest successful apply (a later
    destroy forgets it)."""
    deployed: dict[str, tuple[str, str]] = {}
    for row in history(open_store(repo.root, endpoint_url=repo.settings.endpoint_url, env=env)):
        if row.status not in (Status.SUCCEEDED, Status.DONE_BEFORE) or not row.digest:
            continue
        if row.action == Action.APPLY:
            deployed[row.unit] = (row.digest, row.commit)
        elif row.action == Action.DESTROY:
            deployed.pop(row.unit, None)
    return deployed


def changes_since_deployed(repo: Repo, env: Mapping[str, str] | None = None) -> ChangeSet:
    """The units changed since their last successful apply (see the module docstring)."""
    deployed = last_deployed(repo, env)
    same = {u for u, (digest, _) in deployed.items() if u in repo.units and repo.units[u].digest == digest}
    also: set[str] = set()
    for commit in sorted({deployed[u][1] for u in same}):
        units = {u for u in same if deployed[u][1] == commit}
        if not commit:
            also |= units
            continue
        try:
            since = changed_units(repo, git_files(repo.root, commit, env), commit)
        except RefarchError:  # not in this clone's history: plan them (no changes, no apply)
            also |= units
            continue
        also |= units & set(since.changed)
    return undeployed(repo, {u: digest for u, (digest, _) in deployed.items()}, also)
