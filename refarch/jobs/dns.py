"""`refarch dns import` as a library: existing Route 53 zones into the state of their units."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from refarch.aws import AwsSessions
from refarch.provision.dns import ZoneImport, describe, import_zones
from refarch.repo import load_repo
from refarch.settings import load_settings, with_terraform_binary

NO_ZONE_UNIT = "no unit manages a hosted zone (no route53 unit with a domain_name)"


@dataclass(frozen=True)
class DnsImportRequest:
    """What `refarch dns import DIR` is asked, one field per flag."""

    directory: str | Path
    endpoint_url: str | None = None
    profile: str | None = None
    tf_path: str | None = None  # the Terraform binary, over `[engine] terraform_binary`


@dataclass(frozen=True)
class TerraformLine:
    """One line of `terraform import` output (stream: stdout | stderr)."""

    stream: str
    line: str


@dataclass(frozen=True)
class DnsImportResult:
    """What happened to each domain: imported, already in its unit's state, or no zone yet."""

    imports: tuple[ZoneImport, ...]

    @property
    def lines(self) -> list[str]:
        """One line per domain, or why there is none."""
        return describe(self.imports) or [NO_ZONE_UNIT]


def run_dns_import(
    request: DnsImportRequest,
    *,
    on_event: Callable[[TerraformLine], None] | None = None,
    sessions: AwsSessions | None = None,
) -> DnsImportResult:
    """What `refarch dns import DIR` does: each existing public hosted zone imported into the
    state of the unit that manages it (see refarch.provision.dns.import_zones)."""
    settings = load_settings(Path(request.directory)).with_overrides(
        endpoint_url=request.endpoint_url, profile=request.profile
    )
    settings = with_terraform_binary(settings, request.tf_path)

    def on_line(stream: str, line: str) -> None:
        if on_event is not None:
            on_event(TerraformLine(stream, line))

    repo = load_repo(request.directory, settings=settings)
    return DnsImportResult(tuple(import_zones(repo, settings, sessions=sessions, on_line=on_line)))
