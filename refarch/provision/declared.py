"""What the live repo asks bootstrap to make: `bootstrap.hcl`'s locals, merged into the settings.

`bootstrap.hcl` at the repo root is the one source of truth for the names bootstrap creates
and the units use: units read it with `read_terragrunt_config(find_in_parent_folders(
"bootstrap.hcl"))`, bootstrap reads the same locals with refarch's own evaluator. Its locals,
each optional:

    keypairs     = { purpose = "key-pair-name", ... }   -> [keypairs] names (the values)
    kms_admin    = { user = "...", account = "security", arns = [...] }   -> [kms_admin]
    passwords    = ["db_password", ...]                   -> [secrets] passwords
    secrets      = { accounts = [...] }                   -> [secrets] (the other keys)
    certificates = { internal = [...], cloudfront = [...], public = [...] } -> [certificates]
    dns          = { domains = [...], account = "..." }   -> [dns]
    vpn          = { ... }                                 -> [vpn]

refarch.toml still overrides and extends them: its lists are added to the file's, its other
keys win. Anything else in the file's locals is the units' own business.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from refarch.config.evaluate import Loader, read_config
from refarch.config.values import contains_unknown, to_plain, type_name
from refarch.errors import ConfigError
from refarch.settings import DECLARED, FILE, Settings, to_toml

REPO_FILE = "bootstrap.hcl"
# Locals of bootstrap.hcl that are read as a refarch.toml section of the same name.
SECTION_LOCALS = ("kms_admin", "certificates", "dns", "vpn", "backend", "secrets")


def declared_sections(
    root: Path, file: str = REPO_FILE, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The refarch.toml-shaped sections bootstrap.hcl declares ({} when there is no file)."""
    path = Path(root) / file
    if not path.is_file():
        return {}
    loader = Loader(Path(root).resolve(), env=dict(os.environ) if env is None else env)
    config, _ = read_config(loader, path.resolve(), path.resolve().parent)
    values = config.get("locals") or {}
    if contains_unknown(values):
        unknown = sorted(k for k, v in values.items() if contains_unknown(v))
        raise ConfigError(
            f"local(s) {', '.join(unknown)} are not known before apply: {to_plain(values)}",
            path=file,
            hint="bootstrap.hcl must name things with literal values (no dependency outputs)",
        )
    sections: dict[str, Any] = {}
    if "keypairs" in values:
        pairs = values["keypairs"]
        if not isinstance(pairs, dict) or not all(isinstance(v, str) and v for v in pairs.values()):
            raise _wrong(file, "keypairs", "a map of purpose = key pair name", pairs)
        sections["keypairs"] = {"names": sorted(set(pairs.values()))}
    if "passwords" in values:
        passwords = values["passwords"]
        if not isinstance(passwords, list) or not all(isinstance(v, str) and v for v in passwords):
            raise _wrong(file, "passwords", "a list of names", passwords)
        sections["secrets"] = {"passwords": list(passwords)}
    for name in SECTION_LOCALS:
        if name in values:
            if not isinstance(values[name], dict):
                raise _wrong(file, name, "an object (the keys of refarch.toml's section)", values[name])
            sections[name] = {**dict(values[name]), **sections.get(name, {})}  # + `passwords`
    return sections


def _wrong(file: str, name: str, wanted: str, value: Any) -> ConfigError:
    return ConfigError(
        f"local.{name} must be {wanted}, not {type_name(value)}",
        path=file,
        hint=f"see the comments in {REPO_FILE}, or the README's bootstrap section",
    )


def merge_sections(declared: Mapping[str, Any], toml: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Sections of bootstrap.hcl with refarch.toml's on top: lists are joined (file first,
    no repeats), any other key of refarch.toml wins."""
    merged: dict[str, Any] = {name: dict(section) for name, section in toml.items()}
    for name, section in declared.items():
        target = dict(section)
        for key, value in toml.get(name, {}).items():
            if isinstance(value, list) and isinstance(target.get(key), list):
                target[key] = list(dict.fromkeys([*target[key], *value]))
            else:
                target[key] = value
        merged[name] = target
    return merged


def with_declared(root: Path, settings: Settings, env: Mapping[str, str] | None = None) -> Settings:
    """`settings` with what the repo's bootstrap.hcl declares merged into its sections (and
    recorded as their source, for `refarch config show`).

    The file's name can be changed with `[bootstrap] file` in refarch.toml.
    """
    declared = declared_sections(root, settings.bootstrap.file, env)
    if not declared:
        return settings
    toml = {name: toml_keys(settings, name) for name in declared}
    merged = merge_sections(declared, toml)
    sources = dict(settings.sources)
    for name, section in declared.items():
        for key in section:
            if f"{name}.{key}" not in sources:
                sources[f"{name}.{key}"] = DECLARED
    return replace(settings, sections=merged, sources=sources)


def toml_keys(settings: Settings, name: str) -> dict[str, Any]:
    """What refarch.toml itself says in `[name]`: the keys it was the source of (or, for
    Settings made in code, every key not at its default)."""
    table = to_toml(getattr(settings, name))
    said = {k for k in table if settings.sources.get(f"{name}.{k}") == FILE}
    if not any(key.startswith(f"{name}.") for key in settings.sources):
        said = set(settings.section(name))
    return {k: v for k, v in table.items() if k in said}
