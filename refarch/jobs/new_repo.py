"""`refarch new DIR` as a library: a new infrastructure-live repo rendered from live-templates/."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from refarch.render import render_live_repo


@dataclass(frozen=True)
class NewRequest:
    """The repo to render: the organisation, its accounts (name -> 12-digit ID, in order) and
    regions (the first is the primary one)."""

    directory: str | Path
    org: str
    accounts: Mapping[str, str]
    regions: tuple[str, ...]
    domain: str | None = None  # default: ORG.internal
    modules_source: str | None = None  # default: a copy of refarch's modules in the new repo
    flavour: str = "aws"  # aws | demo (provider-free modules Terraform applies offline)
    ci_install: str | None = None
    ci_install_sha256: str | None = None
    force: bool = False  # render into a non-empty folder, replacing files


@dataclass(frozen=True)
class NewResult:
    """The files written, and how many units they hold."""

    directory: Path
    written: tuple[Path, ...]

    @property
    def units(self) -> int:
        return sum(1 for path in self.written if path.name == "terragrunt.hcl")


def new_repo(request: NewRequest) -> NewResult:
    """Render a complete infrastructure-live repo: root.hcl, common.hcl, _envcommon/, and one
    folder per account, region and unit."""
    written = render_live_repo(
        request.directory,
        org=request.org,
        accounts=request.accounts,
        regions=list(request.regions),
        domain=request.domain,
        modules_source=request.modules_source,
        flavour=request.flavour,
        force=request.force,
        ci_install=request.ci_install,
        ci_install_sha256=request.ci_install_sha256,
    )
    return NewResult(Path(request.directory), tuple(written))
