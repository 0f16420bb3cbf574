"""Existing Route 53 zones: find the public hosted zones of the domains, import them into the
state of the unit that manages them (refarch dns import)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import botocore.exceptions

from refarch.aws import AwsSessions
from refarch.engines import EngineResult, UnitJob
from refarch.engines.workdir import unit_slug
from refarch.errors import AwsError, ConfigError, ProcessFailed
from refarch.exec.process import Interrupt, LineCallback
from refarch.models import Repo, Unit
from refarch.provision import Result
from refarch.settings import DEFAULT_DNS_ADDRESS as DEFAULT_ADDRESS
from refarch.settings import DnsSettings, Settings

DnsConfig = DnsSettings  # `[dns]` of refarch.toml, read by refarch.settings


def public_zones(route53: Any) -> dict[str, str]:
    """Every public hosted zone of the account: name (no trailing dot) -> zone id (no prefix)."""
    zones: dict[str, str] = {}
    for page in route53.get_paginator("list_hosted_zones").paginate():
        for zone in page.get("HostedZones", []):
            if zone.get("Config", {}).get("PrivateZone"):
                continue
            zones.setdefault(zone["Name"].rstrip(".").lower(), zone["Id"].rsplit("/", 1)[-1])
    return zones


def zone_for(zones: dict[str, str], name: str) -> tuple[str, str] | None:
    """The most specific zone that `name` (a domain or a host in it) belongs to."""
    labels = name.lower().rstrip(".").lstrip("*.").split(".")
    for start in range(len(labels) - 1):
        candidate = ".".join(labels[start:])
        if candidate in zones:
            return candidate, zones[candidate]
    return None


def find_zone(
    zones: dict[str, str],
    domain: str,
    *,
    account_id: str,
    unit: str | None,
    address: str = DEFAULT_ADDRESS,
) -> Result | None:
    """The zone of exactly `domain`, with the `terraform import` the route53 unit needs."""
    zone_id = zones.get(domain)
    if zone_id is None:
        return None
    ids = {"zone_id": zone_id, "import": f"import {address} {zone_id}"}
    if unit:
        ids["unit"] = unit
    return Result("hosted-zone", domain, "exists", account_id, None, ids)


# -- importing the zone into the managing unit's state -----------------------------------------
ZONE_UNIT_FOLDER = "route53"  # a unit in a folder of this name manages the domain's zone
DOMAIN_INPUT = "domain_name"  # ... for the domain its input of this name holds
WORK_DIR = Path(".refarch") / "work"  # the runner's (refarch.runner.context.WORK_DIR): same folders
LOG_DIR = Path(".refarch") / "logs" / "dns-import"
# What the Terraform child inherits besides the unit's credentials (as the runner does).
INHERITED_ENV = (
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "TF_PLUGIN_CACHE_DIR",
    "TF_CLI_CONFIG_FILE",  # the user's provider mirror / network settings, as for a run
)
ImportStatus = Literal["imported", "exists", "absent"]


class Importer(Protocol):
    """An engine that can import into a unit's state (refarch.engines.terraform.TerraformEngine)."""

    def import_resource(self, job: UnitJob, address: str, resource_id: str) -> EngineResult: ...


@dataclass(frozen=True)
class ZoneImport:
    """What happened to one domain: imported, already in the unit's state, or no zone yet
    (the unit's apply creates it)."""

    unit: str
    domain: str
    address: str
    status: ImportStatus
    zone_id: str | None = None


def zone_units(repo: Repo, config: DnsConfig) -> list[tuple[Unit, str]]:
    """The units that manage a zone, each with its domain: `[dns] unit` (with the first of
    `[dns] domains` unless it has a domain_name input), else every `route53` unit with a
    domain_name input."""
    if config.unit is not None:
        unit = repo.units.get(config.unit)
        if unit is None:
            raise ConfigError(f"[dns] unit names {config.unit!r}, which is not a unit of the repo")
        domain = unit.inputs.get(DOMAIN_INPUT) or (config.domains[0] if config.domains else None)
        if not isinstance(domain, str):
            raise ConfigError(
                f"unit {unit.path} has no {DOMAIN_INPUT} input and [dns] no domains",
                hint="set [dns] domains, or give the unit a domain_name input",
            )
        return [(unit, domain.lower().rstrip("."))]
    found = []
    for unit in sorted(repo.units.values(), key=lambda u: u.path):
        domain = unit.inputs.get(DOMAIN_INPUT)
        if unit.path.rsplit("/", 1)[-1] == ZONE_UNIT_FOLDER and isinstance(domain, str):
            found.append((unit, domain.lower().rstrip(".")))
    return found


def import_zones(
    repo: Repo,
    settings: Settings,
    *,
    engine: Importer | None = None,
    sessions: AwsSessions | None = None,
    on_line: LineCallback | None = None,
    interrupt: Interrupt | None = None,
    env: dict[str, str] | None = None,
) -> list[ZoneImport]:
    """Import each existing public zone into the state of the unit that manages it.

    Per zone unit: find the zone of its domain in the unit's own account (through the unit's
    role, after the wrong-account guard); none means nothing to import (the unit creates it).
    Else the engine (default: the terraform engine) runs `terraform import ADDRESS ZONE_ID`
    in the unit's prepared folder with its backend, unless the state already has ADDRESS.
    """
    config = settings.dns
    sessions = sessions or AwsSessions(settings)
    if engine is None:
        from refarch.engines.terraform import TerraformEngine  # noqa: PLC0415 - only when importing

        engine = TerraformEngine(settings)
    base = {k: v for k, v in (os.environ if env is None else env).items() if k in INHERITED_ENV}
    results = []
    for unit, domain in zone_units(repo, config):
        session = sessions.session(unit.account_id, unit.account, unit.region, role_arn=unit.iam_role)
        sessions.check_account(unit.path, unit.account_id, session)
        try:
            route53 = sessions.client("route53", unit.account_id, unit.region, unit.account)
            zone_id = public_zones(route53).get(domain)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise AwsError(f"could not list the hosted zones of {unit.account}: {exc}") from None
        if zone_id is None:
            results.append(ZoneImport(unit.path, domain, config.address, "absent"))
            continue
        job = _job(repo, settings, unit, sessions, base, on_line, interrupt)
        outcome = engine.import_resource(job, config.address, zone_id)
        if outcome.outputs is None:
            process = outcome.process
            raise ProcessFailed(process.argv, process.cwd, process.returncode, process.stderr_tail[-2000:])
        status: ImportStatus = "imported" if outcome.outputs.get("imported") else "exists"
        results.append(ZoneImport(unit.path, domain, config.address, status, zone_id))
    return results


def _job(
    repo: Repo,
    settings: Settings,
    unit: Unit,
    sessions: AwsSessions,
    base: dict[str, str],
    on_line: LineCallback | None,
    interrupt: Interrupt | None,
) -> UnitJob:
    """The unit's job for the import: its account's credentials, refarch's work folder."""
    credentials = sessions.credentials_env(unit.account_id, unit.region, unit.account, role_arn=unit.iam_role)
    env = {**base, **credentials}
    if settings.endpoint_url:
        env["AWS_ENDPOINT_URL"] = settings.endpoint_url
    quiet: Callable[[str, str], None] = lambda _stream, _line: None  # noqa: E731
    return UnitJob(
        unit=unit,
        action="import",
        repo=repo,
        work_root=repo.root / WORK_DIR,
        env=env,
        dependency_outputs={},
        log_path=repo.root / LOG_DIR / f"{unit_slug(unit.path)}.log",
        on_line=on_line or quiet,
        interrupt=interrupt or Interrupt(),
        endpoint_url=settings.endpoint_url,
    )


def describe(imports: Sequence[ZoneImport]) -> list[str]:
    """One line per domain, for a report."""
    words = {
        "imported": "imported into its state",
        "exists": "already in its state",
        "absent": "has no zone yet (the unit's apply creates it)",
    }
    return [
        f"{i.domain}: {i.unit} {i.address}" + (f" = {i.zone_id}" if i.zone_id else "") + f" {words[i.status]}"
        for i in imports
    ]
