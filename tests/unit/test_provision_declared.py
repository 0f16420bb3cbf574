"""bootstrap.hcl's locals as settings sections, with refarch.toml on top."""

from __future__ import annotations

from pathlib import Path

import pytest

from refarch.errors import ConfigError
from refarch.provision.declared import declared_sections, merge_sections, with_declared
from refarch.provision.keypairs import KeyPairsConfig
from refarch.provision.kms_admin import KmsAdminConfig
from refarch.provision.secrets import SecretsConfig
from refarch.settings import settings_from_dict

BOOTSTRAP_HCL = """
locals {
  org      = "acme"
  keypairs = { vpn = "${local.org}-vpn", default = "${local.org}-default" }
  kms_admin = { user = "${local.org}-kms-admin", account = "security" }
  passwords = ["db_password"]
  certificates = { internal = ["a.acme.internal"] }
}
"""


def test_locals_become_sections_and_refarch_toml_extends_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "bootstrap.hcl").write_text(BOOTSTRAP_HCL, encoding="utf-8")
    toml = {
        "keypairs": {"names": ["bastion"], "type": "rsa"},
        "kms_admin": {"account": "shared-services"},
        "secrets": {"passwords": ["db_password", "api_token"]},
    }
    settings = with_declared(tmp_path, settings_from_dict(toml), env={})
    assert KeyPairsConfig.from_settings(settings).names == ("acme-default", "acme-vpn", "bastion")
    assert KeyPairsConfig.from_settings(settings).key_type == "rsa"
    kms = KmsAdminConfig.from_settings(settings)
    assert (kms.user, kms.account) == ("acme-kms-admin", "shared-services")  # toml wins
    assert SecretsConfig.from_settings(settings).passwords == ("db_password", "api_token")
    assert settings.section("certificates") == {"internal": ["a.acme.internal"]}


def test_no_file_changes_nothing_and_names_nothing(tmp_path: Path) -> None:
    settings = settings_from_dict({})
    assert with_declared(tmp_path, settings, env={}) is settings
    assert declared_sections(tmp_path) == {}
    assert not KmsAdminConfig.from_settings(settings).wanted
    assert KeyPairsConfig.from_settings(settings).names == ()


def test_a_wrong_shape_names_the_file_and_the_local(tmp_path: Path) -> None:
    (tmp_path / "bootstrap.hcl").write_text('locals {\n  keypairs = ["a", "b"]\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bootstrap.hcl: local.keypairs must be a map"):
        declared_sections(tmp_path, env={})


def test_merge_keeps_lists_in_order_without_repeats() -> None:
    merged = merge_sections({"secrets": {"passwords": ["a", "b"]}}, {"secrets": {"passwords": ["b", "c"]}})
    assert merged == {"secrets": {"passwords": ["a", "b", "c"]}}


def test_secrets_says_which_accounts_keep_the_passwords(tmp_path: Path) -> None:
    (tmp_path / "bootstrap.hcl").write_text(
        'locals {\n  passwords = ["master_password"]\n  secrets = { accounts = ["dev"] }\n}\n',
        encoding="utf-8",
    )
    config = SecretsConfig.from_settings(with_declared(tmp_path, settings_from_dict({}), env={}))
    assert (config.passwords, config.accounts) == (("master_password",), ("dev",))
