"""Load a live repo and check its graph: the one call a script makes before planning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from refarch import config, graph
from refarch.models import Repo


def load_repo(path: str | Path, **options: Any) -> Repo:
    """Read every unit (see `refarch.config.load_repo` for options), then reject dependency
    cycles and dependencies on later account tiers."""
    repo = config.load_repo(path, **options)
    graph.validate(repo)
    return repo
