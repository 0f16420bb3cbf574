"""Which inputs are references: the catalogue (names and value shapes) and [preflight]."""

from __future__ import annotations

import pytest

from refarch.config.values import Unknown
from refarch.errors import ConfigError
from refarch.jobs.preflight import CATALOGUE, PreflightConfig, find_references, unknown_dependency_outputs
from refarch.models import Dependency, Unit
from refarch.settings import settings_from_dict

UNIT = Unit(
    path="dev/us-east-1/app",
    account="dev",
    account_id="444444444444",
    region="us-east-1",
    inputs={
        "cluster_instance_keypair_name": "workers",
        "ssh_key_name": "ops",
        "ami_id": "ami-0123456789abcdef0",
        "image": "ami-0fedcba98",  # by shape alone
        "cmk_administrator_iam_arns": ["arn:aws:iam::111111111111:user/kms-admin"],
        "certs": {"www": "arn:aws:acm:us-east-1:444444444444:certificate/abc"},
        "db_secret_arn": "arn:aws:secretsmanager:us-east-1:444444444444:secret:db-AbCd",
        "kms_key_arn": "(known after apply: dependency.kms.outputs.key_arn)",
        "vpc_id": "(known after apply: dependency.vpc.outputs.vpc_id)",  # not a reference
        "bucket_arn": "arn:aws:s3:::acme-logs",
        "hosted_zone_id": "Z123",
        "name": "keypair_name",  # a string that only looks like a name
        "count": 3,
    },
)


def test_names_and_shapes_find_every_reference_and_unknowns_are_listed() -> None:
    refs = {r.input: (r.kind, r.value) for r in find_references(UNIT, region="us-east-1")}
    assert refs == {
        "cluster_instance_keypair_name": ("key-pair", "workers"),
        "ssh_key_name": ("key-pair", "ops"),
        "ami_id": ("ami", "ami-0123456789abcdef0"),
        "image": ("ami", "ami-0fedcba98"),
        "cmk_administrator_iam_arns[0]": ("iam-principal", "arn:aws:iam::111111111111:user/kms-admin"),
        'certs["www"]': ("acm-certificate", "arn:aws:acm:us-east-1:444444444444:certificate/abc"),
        "db_secret_arn": ("secret", "arn:aws:secretsmanager:us-east-1:444444444444:secret:db-AbCd"),
        "kms_key_arn": (None, None),
        "bucket_arn": ("s3-bucket", "arn:aws:s3:::acme-logs"),
        "hosted_zone_id": ("hosted-zone", "Z123"),
    }
    [unknown] = [r for r in find_references(UNIT, region="us-east-1") if r.value is None]
    assert unknown.unknown == "dependency.kms.outputs.key_arn"


def test_refarch_toml_adds_rules_and_ignores_inputs() -> None:
    settings = settings_from_dict(
        {
            "preflight": {
                "rules": [{"kind": "key-pair", "inputs": ["name"]}],
                "ignore": ["*_arns", "ssh_*"],
            }
        }
    )
    config = PreflightConfig.from_settings(settings)
    assert config.rules[len(config.rules) - len(CATALOGUE) :] == CATALOGUE
    refs = {r.input: r.kind for r in find_references(UNIT, config.rules, region="x", ignore=config.ignore)}
    assert refs["name"] == "key-pair"
    assert "ssh_key_name" not in refs and "cmk_administrator_iam_arns[0]" not in refs


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "dragon", "inputs": ["x"]},
        {"kind": "ami"},
        {"kind": "ami", "pattern": "("},
        {"kind": "ami", "x": 1},
    ],
)
def test_a_wrong_rule_is_a_config_error(rule: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"preflight\.rules"):
        PreflightConfig.from_settings(settings_from_dict({"preflight": {"rules": [rule]}}))


def test_mocked_outputs_become_unknown_for_the_re_evaluation() -> None:
    unit = Unit(
        path="a",
        account="dev",
        account_id=None,
        region=None,
        dependency_blocks=(
            Dependency("kms", "b", mock_outputs={"key_arn": "arn:aws:kms:us-east-1:0:key/mock"}),
            Dependency("vpc", "c"),
        ),
    )
    assert unknown_dependency_outputs(unit) == {"kms": {"key_arn": Unknown("dependency.kms.outputs.key_arn")}}
