"""Data-store passwords: made once in Secrets Manager, handed to units as TF_VAR_ values."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from refarch.aws import AwsSessions
from refarch.errors import ConfigError, ProvisionError
from refarch.provision import is_mutating
from refarch.provision.secrets import (
    SecretsConfig,
    SecretsManagerStore,
    ensure_password,
    generate_password,
    password_env,
)
from refarch.settings import settings_from_dict

ACCOUNT = "123456789012"


def test_generated_passwords_are_long_and_mixed() -> None:
    password = generate_password(32)
    assert len(password) == 32
    assert any(c.isupper() for c in password) and any(c.isdigit() for c in password)
    assert not set(password) & set("/@\" '")
    assert generate_password(32) != password


def test_config_validation() -> None:
    config = SecretsConfig.from_settings(
        settings_from_dict({"secrets": {"passwords": ["db_password"], "length": 48}})
    )
    assert (config.passwords, config.length, config.prefix) == (("db_password",), 48, "refarch/")
    with pytest.raises(ConfigError, match=r"secrets.length must be an integer >= 32"):
        SecretsConfig.from_settings(settings_from_dict({"secrets": {"length": 16}}))
    with pytest.raises(ConfigError, match=r"secrets.passwords\[0\] must be a name"):
        SecretsConfig.from_settings(settings_from_dict({"secrets": {"passwords": ["db pass"]}}))


@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield


def test_password_made_once_and_never_changed(aws: Any) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    first = ensure_password(client, "db_password", account_id=ACCOUNT, region="us-east-1")
    assert first.status == "created" and first.ids["arn"].startswith("arn:aws:secretsmanager")
    value = client.get_secret_value(SecretId="refarch/passwords/db_password")["SecretString"]
    assert len(value) == 40
    assert value not in repr(first)
    second = ensure_password(client, "db_password", account_id=ACCOUNT, region="us-east-1")
    assert (second.status, second.changes) == ("exists", ())
    assert client.get_secret_value(SecretId="refarch/passwords/db_password")["SecretString"] == value


def test_password_env_reads_only(aws: Any) -> None:
    settings = settings_from_dict({"secrets": {"prefix": "acme/"}})
    client = boto3.client("secretsmanager", region_name="us-east-1")
    ensure_password(client, "db_password", account_id=ACCOUNT, region="us-east-1", prefix="acme/")
    calls: list[tuple[str, str]] = []
    sessions = AwsSessions(settings, on_call=lambda s, o: calls.append((s, o)))
    env = password_env(sessions, ACCOUNT, "us-east-1", ["db_password", "db_password"])
    assert list(env) == ["TF_VAR_db_password"] and len(env["TF_VAR_db_password"]) == 40
    assert not [c for c in calls if is_mutating(*c)]
    assert password_env(sessions, ACCOUNT, "us-east-1", []) == {}
    with pytest.raises(ProvisionError, match="password other is not in Secrets Manager"):
        password_env(sessions, ACCOUNT, "us-east-1", ["other"])


def test_secrets_manager_store(aws: Any) -> None:
    store = SecretsManagerStore(boto3.client("secretsmanager", region_name="us-east-1"), "p/")
    assert not store.exists("x") and store.read("x") is None
    store.write("x", "value", description="d")
    assert store.exists("x") and store.read("x") == "value"
    assert store.ref("x") == "secretsmanager:p/x"
