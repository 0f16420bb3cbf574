"""Generate Terragrunt stacks with remote sources fetched as module sources are.

`refarch.config.stacks` does the work and takes the fetcher as a parameter (config sits below
the engines); this composition hands it the terraform engine's git fetcher, so a stack's
`git::` / `github.com/...` sources are cloned once per URL and ref into
`<root>/.refarch/work/.sources`, the same cache the modules use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from refarch.config.stacks import Fetcher, StacksResult
from refarch.config.stacks import generate_stacks as _generate
from refarch.engines.workdir import SOURCES_DIR, GitCloner, parse_source
from refarch.errors import ConfigError, ModuleSourceError

WORK_DIR = Path(".refarch") / "work"


def generate_stacks(root: str | Path, *, env: Mapping[str, str] | None = None) -> StacksResult:
    """Generate every terragrunt.stack.hcl below `root` into its .terragrunt-stack folder,
    as `terragrunt stack generate` does. `refarch.load_repo` does not call this: call it first
    (the CLI's graph, plan and run commands do) when the repo has stacks."""
    root = Path(root).resolve()
    env = dict(os.environ) if env is None else env
    return _generate(root, env=env, fetch=git_fetcher(root / WORK_DIR / SOURCES_DIR, env))


def git_fetcher(sources_dir: Path, env: Mapping[str, str], cloner: GitCloner | None = None) -> Fetcher:
    """A fetcher for stack sources: a git URL (with `//subdir` and `?ref=`) -> the folder."""
    git = cloner or GitCloner()

    def fetch(source: str) -> Path:
        parsed = parse_source(source)
        if parsed.kind != "git":
            raise ConfigError(f"source {source} does not exist")
        clone = git.fetch(parsed, sources_dir, env)
        folder = clone / parsed.subdir if parsed.subdir else clone
        if not folder.is_dir():
            raise ModuleSourceError(
                None,
                source,
                f"folder {parsed.subdir!r} does not exist in the repository",
                hint="fix the part after '//'",
            )
        return folder

    return fetch
