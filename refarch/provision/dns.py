"""Existing Route 53 zones: find the public hosted zones of the configured domains, plan imports."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from refarch.provision import Result, Section
from refarch.settings import Settings

DEFAULT_ADDRESS = "aws_route53_zone.primary_domain"
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class DnsConfig:
    """`[dns]`: the public domains, where their zones are, and which unit imports them."""

    domains: tuple[str, ...] = ()
    account: str | None = None  # None: look in every account being bootstrapped
    unit: str | None = None  # None: the account's unit whose folder is called route53
    address: str = DEFAULT_ADDRESS

    @classmethod
    def from_settings(cls, settings: Settings) -> DnsConfig:
        section = Section(settings, "dns", ("domains", "account", "unit", "address"))
        domains = tuple(d.lower().rstrip(".") for d in section.strings("domains"))
        for domain in domains:
            if not DOMAIN.match(domain):
                raise section.error("domains", "a list of DNS names such as example.com")
        return cls(
            domains,
            section.optional_string("account"),
            section.optional_string("unit"),
            section.string("address", DEFAULT_ADDRESS),
        )


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
