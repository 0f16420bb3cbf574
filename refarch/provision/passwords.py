"""Data-store passwords for the units that declare them: `TF_VAR_<name>`, never in a file.

`refarch bootstrap` keeps the passwords named in `[secrets] passwords` in Secrets Manager of
each account. At run time a unit receives, through its environment only, those its module
declares as variables; a module refarch cannot read (a remote source with the terragrunt
engine) receives every configured name, which Terraform ignores when undeclared. The runner
masks every value it hands out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from refarch.aws import AwsSessions
from refarch.engines.workdir import declared_variables, parse_source
from refarch.errors import ConfigError
from refarch.models import Repo, Unit
from refarch.provision.declared import with_declared
from refarch.provision.secrets import SecretsConfig, password_env

PasswordEnv = Callable[[Unit], Mapping[str, str]]


def password_provider(repo: Repo, sessions: AwsSessions) -> PasswordEnv | None:
    """A per-unit provider of `TF_VAR_<password>` values, or None when none are configured."""
    config = SecretsConfig.from_settings(with_declared(repo.root, repo.settings))  # + bootstrap.hcl
    if not config.passwords:
        return None

    def provide(unit: Unit) -> Mapping[str, str]:
        if unit.account_id is None or (config.accounts is not None and unit.account not in config.accounts):
            return {}
        declared = module_variables(repo.root, unit)
        wanted = [n for n in config.passwords if declared is None or n in declared]
        return password_env(
            sessions, unit.account_id, unit.region or repo.settings.region, wanted, account_name=unit.account
        )

    return provide


def module_variables(root: Path, unit: Unit) -> set[str] | None:
    """The variables a unit's local module declares; None when it cannot be read here."""
    if not unit.source:
        return None
    try:
        source = parse_source(unit.source)
    except ConfigError:
        return None
    if source.kind != "local":
        return None
    folder = Path(os.path.normpath(root / unit.path / source.root / source.subdir))
    return declared_variables(folder) if folder.is_dir() else None
