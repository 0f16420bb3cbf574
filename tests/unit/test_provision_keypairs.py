"""Key pairs: generated locally, passphrase-protected, kept in a store, imported per region."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from moto import mock_aws

from refarch.errors import ConfigError, ProvisionError
from refarch.provision.keypairs import (
    KeyPairsConfig,
    ensure_key_material,
    ensure_key_pair,
    generate_key,
    secret_names,
)
from refarch.provision.secrets import DirectoryStore
from refarch.settings import settings_from_dict

ACCOUNT = "123456789012"


def test_private_key_needs_its_passphrase() -> None:
    key = generate_key()
    assert key.public_key.startswith("ssh-ed25519 ")
    assert "OPENSSH PRIVATE KEY" in key.private_key
    assert len(key.passphrase) >= 32
    with pytest.raises((TypeError, ValueError)):
        serialization.load_ssh_private_key(key.private_key.encode(), None)
    loaded = serialization.load_ssh_private_key(key.private_key.encode(), key.passphrase.encode())
    assert loaded.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode() == (key.public_key)


def test_rsa_keys_are_an_option() -> None:
    key = generate_key("rsa", rsa_bits=2048)  # the default is 4096; 2048 keeps the test fast
    assert key.public_key.startswith("ssh-rsa ")


def test_config_defaults_and_validation() -> None:
    config = KeyPairsConfig.from_settings(settings_from_dict({}))
    assert (config.names, config.key_type, config.rsa_bits) == ((), "ed25519", 4096)  # none unless named
    with pytest.raises(ConfigError, match=r"refarch.toml: keypairs.type must be one of"):
        KeyPairsConfig.from_settings(settings_from_dict({"keypairs": {"type": "dsa"}}))
    with pytest.raises(ConfigError, match=r"keypairs.rsa_bits must be an integer >= 2048"):
        KeyPairsConfig.from_settings(settings_from_dict({"keypairs": {"rsa_bits": 1024}}))


def test_material_kept_in_a_private_folder_and_found_again(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "keys" / "dev")
    public, result = ensure_key_material(store, "openvpn", account_id=ACCOUNT)
    assert result.status == "created" and public is not None
    private_name, passphrase_name, _ = secret_names("openvpn")
    for name in (private_name, passphrase_name):
        path = tmp_path / "keys" / "dev" / name
        assert path.stat().st_mode & 0o777 == 0o400
        assert path.parent.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "keys" / "dev").stat().st_mode & 0o777 == 0o700
    assert "PRIVATE KEY" not in repr(result)  # the result names where, never what
    again, second = ensure_key_material(store, "openvpn", account_id=ACCOUNT)
    assert (again, second.status, second.changes) == (public, "exists", ())


def test_half_written_material_is_repaired(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    public, _ = ensure_key_material(store, "vpn", account_id=ACCOUNT)
    (tmp_path / secret_names("vpn")[2]).unlink()
    again, result = ensure_key_material(store, "vpn", account_id=ACCOUNT)
    assert again == public
    assert (result.status, result.changes) == ("updated", ("store the public key vpn",))
    (tmp_path / secret_names("vpn")[1]).unlink()
    with pytest.raises(ProvisionError, match="has a private key but no passphrase"):
        ensure_key_material(store, "vpn", account_id=ACCOUNT)


def test_dry_run_generates_nothing(tmp_path: Path) -> None:
    public, result = ensure_key_material(
        DirectoryStore(tmp_path / "k"), "vpn", account_id=ACCOUNT, dry_run=True
    )
    assert public is None and result.changes and not (tmp_path / "k").exists()


def test_dry_run_lists_the_changes_the_real_run_makes(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "k")
    _, planned = ensure_key_material(store, "vpn", account_id=ACCOUNT, dry_run=True)
    _, made = ensure_key_material(store, "vpn", account_id=ACCOUNT)
    assert planned.changes == made.changes and len(made.changes) == 3
    assert planned.status == made.status == "created"
    (tmp_path / "k" / secret_names("vpn")[2]).unlink()  # half-written: the public key is gone
    _, planned = ensure_key_material(store, "vpn", account_id=ACCOUNT, dry_run=True)
    _, made = ensure_key_material(store, "vpn", account_id=ACCOUNT)
    assert planned.changes == made.changes == ("store the public key vpn",)


@pytest.fixture
def ec2() -> Any:
    with mock_aws():
        yield boto3.client("ec2", region_name="eu-west-1")


def test_key_pair_imported_once(ec2: Any) -> None:
    key = generate_key()
    first = ensure_key_pair(ec2, "vpn", key.public_key, account_id=ACCOUNT, region="eu-west-1")
    assert first.status == "created" and first.ids["key_pair_id"]
    second = ensure_key_pair(ec2, "vpn", key.public_key, account_id=ACCOUNT, region="eu-west-1")
    assert (second.status, second.changes, second.warnings) == ("exists", (), ())


def test_a_foreign_key_pair_is_left_alone_with_a_warning(ec2: Any) -> None:
    ec2.import_key_pair(KeyName="vpn", PublicKeyMaterial=generate_key().public_key.encode())
    result = ensure_key_pair(ec2, "vpn", generate_key().public_key, account_id=ACCOUNT, region="eu-west-1")
    assert result.status == "exists"
    assert "not the key kept by refarch" in result.warnings[0]


def test_dry_run_key_pair_without_material(ec2: Any) -> None:
    result = ensure_key_pair(ec2, "vpn", None, account_id=ACCOUNT, region="eu-west-1", dry_run=True)
    assert result.changes == ("import key pair vpn in eu-west-1",)
    assert ec2.describe_key_pairs()["KeyPairs"] == []
