"""`--changed-since REF`: the units a change selects, as include/exclude patterns."""

from __future__ import annotations

from collections.abc import Sequence

from refarch import graph
from refarch.changes import DEPLOYED, ChangeSet, changes_since, selection
from refarch.models import Repo


def changed_selection(
    repo: Repo, ref: str, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[ChangeSet, list[str], list[str]]:
    """The change since `ref` (a git ref, or `deployed`: since each unit's last successful
    apply in the ledger) and the include/exclude patterns (to use with --ignore-dependencies)
    selecting its units, within the caller's own `include`."""
    if ref == DEPLOYED:  # reads the ledger: boto3 is loaded only for it (`refarch graph` stays light)
        from refarch.jobs.deployed import changes_since_deployed  # noqa: PLC0415

        change = changes_since_deployed(repo)
    else:
        change = changes_since(repo, ref)
    wanted, nested = selection(change, repo)
    if include:
        wanted = [p for p in wanted if graph.matches(p, include)]
    return change, wanted, [*exclude, *nested]
