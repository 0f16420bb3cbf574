"""refarch.toml into typed settings: errors at load, round trips, sources, every key used."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from refarch.cli import cli
from refarch.errors import ConfigError
from refarch.settings import (
    SECTION_TYPES,
    AccountAccess,
    PreflightRuleSettings,
    RetryRuleSettings,
    Settings,
    load_settings,
    reference_markdown,
    section_fields,
    settings_from_dict,
    to_toml,
)

REPO = Path(__file__).resolve().parents[2]

# Every key of every section, each away from its default: loading it and writing it back
# must give the same tables.
EVERY_KEY: dict[str, dict[str, Any]] = {
    "engine": {
        "name": "terraform",
        "terraform_binary": "/opt/tofu/bin/tofu",
        "terraform_version": "1.11.4",
        "terragrunt_binary": "/opt/tg",
        "terragrunt_pass_iam_role": False,
        "terragrunt_dialect": "modern",
        "provider_cache": False,
        "plugin_cache_dir": "/var/cache/tf-plugins",
    },
    "retry": {
        "defaults": False,
        "lock_timeout": "90s",
        "rules": [
            {
                "pattern": "503",
                "name": "flaky",
                "attempts": 4,
                "backoff": "fixed",
                "delay": 1.5,
                "max_delay": 9.0,
                "jitter": 0.1,
                "remedy": "wait_for_lock",
                "hint": "call the registry's owner",
            }
        ],
    },
    "bootstrap": {"parallelism": 2, "file": "declare.hcl"},
    "backend": {
        "tags": {"team": "platform"},
        "kms_key_id": "alias/state",
        "enforce_tls": False,
        "point_in_time_recovery": False,
    },
    "keypairs": {"names": ["acme-default"], "type": "rsa", "rsa_bits": 3072},
    "certificates": {
        "internal": ["a.acme.internal"],
        "cloudfront": ["*.acme.example"],
        "public": ["www.acme.example"],
        "ca_account": "security",
        "ca_name": "Acme CA",
        "validity_days": 90,
        "accounts": ["dev"],
    },
    "kms_admin": {
        "user": "kms-boss",
        "account": "security",
        "create": False,
        "arns": ["arn:aws:iam::123456789012:role/admin"],
    },
    "secrets": {"passwords": ["db_password"], "length": 48, "prefix": "acme/", "accounts": ["prod"]},
    "dns": {"domains": ["acme.example"], "account": "dns", "unit": "dns/global/route53", "address": "x.y"},
    "amis": {
        "packer": "/opt/packer",
        "packer_dir": "/srv/packer",
        "regions": ["eu-west-1"],
        "share_with": ["dev"],
        "encrypt_boot": True,
        "kms_key_id": {"eu-west-1": "alias/ami"},
        "tags": {"team": "platform"},
        "communicator": "none",
        "parallelism": 3,
        "vars": {"instance_type": "t3.small"},
        "templates": {"bastion": {"source_ami_name": "ubuntu-*"}},
        "keep": 2,
    },
    "vpn": {
        "enabled": True,
        "account": "shared-services",
        "region": "eu-west-1",
        "prefix": "acme/vpn/",
        "kms_key_alias": "alias/acme-vpn",
        "server_name": "vpn.acme",
        "ca_name": "Acme VPN CA",
        "client_days": 30,
        "remote": "vpn.acme.example",
        "port": 443,
        "proto": "tcp",
    },
    "preflight": {
        "rules": [{"kind": "secret", "inputs": ["*_secret_arn"], "pattern": "^arn:aws:secretsmanager:"}],
        "ignore": ["legacy_*"],
    },
    "ledger": {
        "backend": "dynamodb",
        "table": "acme-runs",
        "account": "security",
        "region": "eu-west-1",
        "bucket": "acme-run-logs",
        "prefix": "runs/",
        "repo": "github.com/acme/live",
        "lock_expiry": 600,
    },
    "ci": {
        "install": "ci/refarch-0.1.0-py3-none-any.whl",
        "install_sha256": "a" * 64,
        "approval": ["prod", "stage"],
        "plan_role_name": "refarch-plan",
        "terraform_sha256": "b" * 64,
        "terraform_mirror": "https://mirror.example.com/terraform",
        "branch": "trunk",
        "python_version": "3.11",
        "drift_schedule": "0 6 * * 1-5",
    },
    "policy": {
        "builtin": False,
        "rules": [
            {
                "id": "no-public-bucket",
                "types": ["aws_s3_bucket"],
                "conditions": [{"path": "acl", "test": "in", "value": ["public-read"]}],
                "effect": "warn",
                "message": "public",
                "each": "grants",
                "unless_referenced_by": "aws_s3_bucket_acl",
            }
        ],
        "waivers": [{"rule": "sg-admin-port-open", "reason": "bastion", "units": ["dev/*"]}],
        "checkov": True,
        "checkov_deny": ["CKV_AWS_20"],
        "check_apply": True,
    },
    "telemetry": {"otlp_endpoint": "http://127.0.0.1:4318", "service_name": "refarch-ci"},
}


def write_toml(root: Path, text: str) -> Path:
    path = root / "refarch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_sections_keys_round_trip() -> None:
    for name, cls in SECTION_TYPES.items():
        keys = {key for key, _, _ in section_fields(cls)}
        assert set(EVERY_KEY[name]) == keys, f"EVERY_KEY[{name!r}] must name every key of [{name}]"
    assert {k for k, _, _ in section_fields(RetryRuleSettings)} == set(EVERY_KEY["retry"]["rules"][0])
    assert {k for k, _, _ in section_fields(PreflightRuleSettings)} == set(EVERY_KEY["preflight"]["rules"][0])
    settings = settings_from_dict(EVERY_KEY)
    for name in SECTION_TYPES:
        assert to_toml(getattr(settings, name)) == EVERY_KEY[name], name
    assert settings.keypairs.key_type == "rsa"  # attribute and key may differ
    again = settings_from_dict({name: to_toml(getattr(settings, name)) for name in SECTION_TYPES})
    assert all(getattr(again, name) == getattr(settings, name) for name in SECTION_TYPES)
    access = settings_from_dict({"accounts": {"dev": {"role_arn": "arn:r", "external_id": "x"}}}).accounts
    assert access == {"dev": AccountAccess("arn:r", "x")}


def test_unknown_key_names_file_dotted_key_and_line(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        'region = "eu-west-1"\n\n[amis.templates.bastion]\nx = 1\n\n[vpn]\nport = 443\nprot = "tcp"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, env={})
    assert str(caught.value).startswith(f"{tmp_path / 'refarch.toml'}:8: unknown key vpn.prot")
    assert "known keys of vpn:" in str(caught.value) and caught.value.line == 8
    write_toml(tmp_path, "[run]\nparallelism = 2\n")  # accepted once, read by nothing
    with pytest.raises(ConfigError, match=r"refarch.toml:1: unknown setting run"):
        load_settings(tmp_path, env={})


def test_wrong_type_names_file_dotted_key_and_line(tmp_path: Path) -> None:
    cases = [
        (
            '[retry]\nlock_timeout = "1m"\n\n[[retry.rules]]\npattern = "a"\n\n[[retry.rules]]\n'
            'pattern = "b"\nattempts = "many"\n',
            9,
            'retry.rules[1].attempts must be an integer >= 1, not "many"',
        ),
        ("[amis.templates]\nbastion = 3\n", 2, "amis.templates.bastion must be a table, not 3"),
        ('[keypairs]\ntype = "dsa"\n', 2, 'keypairs.type must be one of "ed25519", "rsa", not "dsa"'),
        ("[backend]\ntags = { team = 1 }\n", 2, "backend.tags.team must be a non-empty string, not 1"),
        ("region = 3\n", 1, "region must be a non-empty string, not 3"),
        ('[certificates]\npublic = ["ok.example", "no spaces"]\n', 2, "certificates.public[1] must be a DNS"),
    ]
    for text, line, message in cases:
        write_toml(tmp_path, text)
        with pytest.raises(ConfigError) as caught:
            load_settings(tmp_path, env={})
        assert str(caught.value).startswith(f"{tmp_path / 'refarch.toml'}:{line}: {message}"), str(
            caught.value
        )


def test_config_errors_exit_2_through_the_cli(tmp_path: Path) -> None:
    write_toml(tmp_path, '[engine]\nname = "pulumi"\n')
    result = CliRunner().invoke(cli, ["config", "show", str(tmp_path)], env={"CI": "true"})
    assert result.exit_code == 2
    assert 'refarch.toml:2: engine.name must be one of "terragrunt", "terraform"' in result.output


def test_sections_given_as_plain_dicts_are_validated_into_the_typed_ones() -> None:
    settings = Settings(
        sections={"engine": {"terraform_binary": "/opt/tofu"}, "retry": {"lock_timeout": "1s"}}
    )
    assert settings.engine.terraform_binary == "/opt/tofu" and settings.retry.lock_timeout == "1s"
    assert settings.sections == {} and settings.section("engine") == {"terraform_binary": "/opt/tofu"}
    with pytest.raises(ConfigError, match=r"unknown key engine\.binary"):
        Settings(sections={"engine": {"binary": "x"}})
    with pytest.raises(ConfigError, match=r"unknown section \[secrets_mask\]"):
        Settings(sections={"secrets_mask": {}})


def test_config_show_says_where_each_value_came_from(tmp_path: Path) -> None:
    write_toml(tmp_path, 'region = "eu-west-1"\n\n[retry]\nlock_timeout = "90s"\n')
    (tmp_path / "bootstrap.hcl").write_text('locals {\n  passwords = ["db_password"]\n}\n', encoding="utf-8")
    argv = ["config", "show", str(tmp_path), "--endpoint-url", "http://127.0.0.1:5000"]
    env = {"AWS_REGION": "eu-central-1", "AWS_PROFILE": "", "AWS_ENDPOINT_URL": "", "CI": "true"}
    result = CliRunner().invoke(cli, [*argv, "--json"], env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["schema_version"] == 1 and document["path"] == str(tmp_path / "refarch.toml")
    rows = {row["key"]: row for row in document["settings"]}
    assert rows["retry.lock_timeout"] == {
        "key": "retry.lock_timeout",
        "value": "90s",
        "source": "refarch.toml",
        "line": 4,
    }
    assert rows["region"]["value"] == "eu-central-1" and rows["region"]["source"] == "environment"
    assert (
        rows["endpoint_url"]["value"] == "http://127.0.0.1:5000" and rows["endpoint_url"]["source"] == "flag"
    )
    assert rows["vpn.port"] == {"key": "vpn.port", "value": 1194, "source": "default", "line": None}
    assert rows["secrets.passwords"]["value"] == ["db_password"]
    assert rows["secrets.passwords"]["source"] == "bootstrap.hcl"
    plain = CliRunner().invoke(cli, argv, env=env)
    assert plain.exit_code == 0, plain.output
    lines = plain.output.splitlines()
    assert re.search(r'^retry\.lock_timeout +?= "90s"  # refarch\.toml:4$', plain.output, re.M), lines
    assert re.search(r'^region +?= "eu-central-1"  # environment$', plain.output, re.M)
    assert re.search(r'^endpoint_url +?= "http://127\.0\.0\.1:5000"  # flag$', plain.output, re.M)
    assert re.search(r"^engine\.name +?= \(unset\)  # default$", plain.output, re.M)


def test_every_setting_is_read_somewhere_in_refarch() -> None:
    """A field nothing reads is a key users can set to no effect: drop it, or read it."""
    sources = "\n".join(
        p.read_text(encoding="utf-8") for p in (REPO / "refarch").rglob("*.py") if p.name != "settings.py"
    )
    classes = [*SECTION_TYPES.values(), RetryRuleSettings, PreflightRuleSettings, AccountAccess]
    generic = {"section", "with_overrides", "source_of", "from_settings", "finish"}
    for cls in [*classes, Settings]:  # the methods that use settings (role_arn_for, tier_of, ...)
        for name, member in vars(cls).items():
            function = member.fget if isinstance(member, property) else member
            if inspect.isfunction(function) and not name.startswith("_") and name not in generic:
                sources += "\n" + inspect.getsource(function)
    unread = []
    for cls in classes:
        for key, item, _ in section_fields(cls):
            attribute, quoted = rf"\.{item.name}\b", rf"[\"']{key}[\"']"
            if not re.search(attribute, sources) and not re.search(quoted, sources):
                unread.append(f"{cls.__name__}.{item.name}")
    core = ["tiers", "endpoint_url", "region", "profile", "role_name", "role_arn", "accounts"]
    unread += [k for k in core if not re.search(rf"\.{k}\b", sources)]
    assert not unread, f"settings nothing in refarch/ reads: {unread}"


def test_readme_table_lists_every_key() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- settings-table:[^\n]*-->\n(.*?)<!-- settings-table end -->", readme, re.S)
    assert block is not None, "README.md has lost its settings table markers"
    assert block.group(1) == reference_markdown(), (
        "the README's settings table is out of date: paste the output of "
        "`python -c 'from refarch.settings import reference_markdown; print(reference_markdown())'`"
    )


def test_the_declared_terraform_version_is_a_version() -> None:
    from refarch.settings import declared_terraform_version

    settings = settings_from_dict({"engine": {"terraform_version": "1.11.4"}})
    assert declared_terraform_version(settings) == "1.11.4"
    assert declared_terraform_version(settings_from_dict({})) is None
    with pytest.raises(ConfigError, match=r"a version such as 1\.11\.4"):
        settings_from_dict({"engine": {"terraform_version": "1.11.4; curl evil"}})
