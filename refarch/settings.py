"""refarch.toml: account tiers, AWS access (endpoint, roles) and each subsystem's section."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from refarch import files
from refarch.errors import ConfigError

SETTINGS_FILE = "refarch.toml"
DEFAULT_TIERS: tuple[tuple[str, ...], ...] = (("security",), ("shared-services",), ("*",))
DEFAULT_ROLE_NAME = "OrganizationAccountAccessRole"
DEFAULT_ROLE_ARN = "arn:aws:iam::{account_id}:role/{role_name}"

# Top-level keys refarch understands. Sections are owned and validated by their subsystem.
CORE_KEYS = {"tiers", "endpoint_url", "region", "profile", "role_name", "role_arn", "accounts"}
SECTIONS = {
    "engine",
    "retry",
    "run",
    "bootstrap",
    "backend",
    "keypairs",
    "certificates",
    "kms_admin",
    "secrets",
    "dns",
    "amis",
    "vpn",
    "secrets_mask",
    "preflight",
    "ledger",
}


@dataclass(frozen=True)
class AccountAccess:
    """How to reach one account: an explicit role ARN, or none to use the caller's own."""

    role_arn: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything refarch.toml can say, with the environment and CLI flags applied on top.

    Precedence, highest first: explicit arguments (CLI flags), the environment
    (`AWS_ENDPOINT_URL`, `AWS_PROFILE`, `AWS_REGION`), refarch.toml, built-in defaults.
    """

    path: Path | None = None
    tiers: tuple[tuple[str, ...], ...] = DEFAULT_TIERS
    endpoint_url: str | None = None
    region: str = "us-east-1"
    profile: str | None = None
    role_name: str = DEFAULT_ROLE_NAME
    role_arn: str = DEFAULT_ROLE_ARN
    accounts: Mapping[str, AccountAccess] = field(default_factory=dict)
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def section(self, name: str) -> Mapping[str, Any]:
        """The raw table `[name]` of refarch.toml (empty when absent)."""
        return self.sections.get(name, {})

    def role_arn_for(self, account_name: str, account_id: str) -> str:
        """The role to assume in an account: per-account override, else the pattern."""
        access = self.accounts.get(account_name)
        if access and access.role_arn:
            return access.role_arn
        return self.role_arn.format(
            account_id=account_id, role_name=self.role_name, account_name=account_name
        )

    def tier_of(self, account_name: str) -> int:
        """1-based tier of an account; `*` catches every account not named elsewhere."""
        star = None
        for index, names in enumerate(self.tiers, start=1):
            if account_name in names:
                return index
            if "*" in names:
                star = index
        if star is None:
            raise ConfigError(
                f"account {account_name!r} is in no tier",
                path=self.path,
                hint='add it to `tiers` in refarch.toml, or add "*" to one tier',
            )
        return star

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the non-None `changes` applied (CLI flags)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_settings(root: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read `root/refarch.toml` if present and apply the environment on top."""
    env = os.environ if env is None else env
    path = root / SETTINGS_FILE
    data: dict[str, Any] = {}
    if path.is_file():
        text = files.read_text(path)  # UnreadableFile (not UTF-8: the line) is a ConfigError
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=path) from None
    return settings_from_dict(data, path=path if path.is_file() else None, env=env)


def settings_from_dict(
    data: Mapping[str, Any], *, path: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Validate a refarch.toml document (already parsed) into Settings."""
    env = {} if env is None else env
    unknown = set(data) - CORE_KEYS - SECTIONS
    if unknown:
        raise ConfigError(
            f"unknown setting(s): {', '.join(sorted(unknown))}",
            path=path,
            hint=f"known keys: {', '.join(sorted(CORE_KEYS | SECTIONS))}",
        )
    tiers = DEFAULT_TIERS
    if "tiers" in data:
        raw = data["tiers"]
        if not (
            isinstance(raw, list)
            and raw
            and all(isinstance(t, list) and t and all(isinstance(n, str) for n in t) for t in raw)
        ):
            raise ConfigError(
                "`tiers` must be a non-empty list of non-empty lists of account names",
                path=path,
                hint='for example: tiers = [["security"], ["shared-services"], ["*"]]',
            )
        seen: set[str] = set()
        for names in raw:
            for name in names:
                if name in seen:
                    raise ConfigError(f"account {name!r} is in two tiers", path=path)
                seen.add(name)
        tiers = tuple(tuple(t) for t in raw)
    for key in ("endpoint_url", "region", "profile", "role_name", "role_arn"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"`{key}` must be a string", path=path)
    accounts: dict[str, AccountAccess] = {}
    for name, table in dict(data.get("accounts", {})).items():
        if not isinstance(table, dict):
            raise ConfigError(f"[accounts.{name}] must be a table", path=path)
        accounts[name] = AccountAccess(table.get("role_arn"), table.get("external_id"))
    for section in SECTIONS & set(data):
        if not isinstance(data[section], dict):
            raise ConfigError(f"[{section}] must be a table", path=path)
    return Settings(
        path=path,
        tiers=tiers,
        endpoint_url=env.get("AWS_ENDPOINT_URL") or data.get("endpoint_url"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or data.get("region") or "us-east-1",
        profile=env.get("AWS_PROFILE") or data.get("profile"),
        role_name=data.get("role_name", DEFAULT_ROLE_NAME),
        role_arn=data.get("role_arn", DEFAULT_ROLE_ARN),
        accounts=accounts,
        sections={k: dict(data[k]) for k in SECTIONS & set(data)},
    )
