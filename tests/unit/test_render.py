"""refarch.render: the live repo layout, argument checks, atomic writes, templates as data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from refarch.errors import ConfigError, UsageError
from refarch.render import (
    FLAVOURS,
    TEMPLATES_DIR,
    load_manifest,
    module_source,
    render_files,
    render_live_repo,
)
from refarch.validate import read_module
from tests.conftest import ACCOUNTS as ALL_ACCOUNTS

# The suite's accounts without stage: five accounts, like the demo.
ACCOUNTS = {name: id_ for name, id_ in ALL_ACCOUNTS.items() if name != "stage"}
ARGS = {"org": "acme", "accounts": ACCOUNTS, "regions": ["us-east-1", "us-west-2"]}


def units_of(files: dict[str, str]) -> list[str]:
    return sorted(p.removesuffix("/terragrunt.hcl") for p in files if p.endswith("terragrunt.hcl"))


def test_layout_follows_the_manifest() -> None:
    files = render_files(**ARGS)
    units = units_of(files)
    baseline = ["alarms", "cross-account-roles", "guardduty"]  # every account but security
    assert [u for u in units if u.startswith("security/")] == [
        "security/us-east-1/alarms",
        "security/us-east-1/aws-config-local",
        "security/us-east-1/cloudtrail",
        "security/us-east-1/cross-account-access",
        "security/us-east-1/guardduty",
        "security/us-east-1/iam-groups",
        "security/us-east-1/kms-admin",
    ]
    assert [u for u in units if u.startswith("shared-services/")] == sorted(
        [
            *(f"shared-services/us-east-1/{kind}" for kind in baseline),
            "shared-services/us-east-1/aws-config-local",
            "shared-services/us-east-1/ecr",
            "shared-services/us-east-1/openvpn",
            "shared-services/us-east-1/vpc",
            "shared-services/us-east-1/vpc-flow-logs",
            "shared-services/us-west-2/vpc",
            "shared-services/us-west-2/vpc-flow-logs",
        ]
    )
    assert [u for u in units if u.startswith("logs/")] == sorted(
        [
            *(f"logs/us-east-1/{kind}" for kind in baseline),
            "logs/us-east-1/aws-config",
            "logs/us-east-1/log-archive",
        ]
    )
    for app in ("dev", "prod"):
        for region in ("us-east-1", "us-west-2"):
            for kind in ("ecs-cluster", "sample-app", "vpc", "vpc-flow-logs", "alb-public", "alb-internal"):
                assert f"{app}/{region}/{kind}" in units
        for kind in ("aurora", "redis", "lambda-hello", "lambda-cleanup", "static-website", "aws-config"):
            assert f"{app}/us-east-1/{kind}" in units
            assert f"{app}/us-west-2/{kind}" not in units
    for name in (
        "root.hcl",
        "common.hcl",
        "amis.auto.hcl",
        "artifacts.hcl",
        "artifacts.auto.hcl",
        "functions/hello/build.py",
        "images/sample-app/Dockerfile",
        "refarch.toml",
        ".gitignore",
        "dev/account.hcl",
        "dev/env.hcl",
        "dev/us-west-2/region.hcl",
        "_envcommon/sample-app.hcl",
    ):
        assert name in files
    # Regions without units get no folder: security is in the primary region only.
    assert "security/us-west-2/region.hcl" not in files


def test_rendering_is_deterministic() -> None:
    assert render_files(**ARGS) == render_files(**ARGS)


def test_root_has_state_per_account_and_region_and_the_account_pinned() -> None:
    root = render_files(**ARGS)["root.hcl"]
    assert 'bucket         = "${local.org}-${local.account_name}-${local.aws_region}-tf-state"' in root
    assert "-tf-locks" in root
    assert 'allowed_account_ids = ["${local.account_id}"]' in root
    assert 'iam_role = "arn:aws:iam::${local.account_id}:role/${local.role_name}"' in root
    account = render_files(**ARGS)["dev/account.hcl"]
    assert 'aws_account_id = "444444444444"' in account


def test_cross_account_dependencies_point_at_the_right_account_and_region() -> None:
    files = render_files(**ARGS)
    app = files["_envcommon/sample-app.hcl"]
    assert (
        "config_path                             = "
        '"${dirname(find_in_parent_folders("root.hcl"))}/shared-services/us-east-1/ecr"'
    ) in app
    assert 'config_path                             = "../ecs-cluster"' in app
    assert "mock_outputs_allowed_terraform_commands" in app
    archive = files["_envcommon/log-archive.hcl"]
    assert "/security/us-east-1/kms-admin" in archive


def test_demo_flavour_has_no_provider_and_keeps_the_layout() -> None:
    aws = render_files(**ARGS)
    demo = render_files(**ARGS, flavour="demo")
    assert units_of(aws) == units_of(demo)
    assert 'provider "aws"' in aws["root.hcl"]
    assert 'provider "aws"' not in demo["root.hcl"]
    assert "remote_state" in demo["root.hcl"]
    assert "prevent_destroy" in aws["security/us-east-1/kms-admin/terragrunt.hcl"]
    assert "prevent_destroy" not in demo["security/us-east-1/kms-admin/terragrunt.hcl"]


def test_vpcs_get_distinct_cidrs() -> None:
    files = render_files(**ARGS)
    cidrs = [
        line
        for path, text in files.items()
        if path.endswith("/vpc/terragrunt.hcl")
        for line in text.splitlines()
        if "cidr_block" in line
    ]
    assert len(cidrs) == len(set(cidrs)) == 6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"accounts": {**ACCOUNTS, "dev": "44444444444"}}, "not an AWS account ID"),
        ({"accounts": {**ACCOUNTS, "dev": "11111111111a"}}, "not an AWS account ID"),
        ({"accounts": {**ACCOUNTS, "dev": "111111111111"}}, "used twice"),
        ({"accounts": {**ACCOUNTS, "Dev": "777777777777"}}, "account name 'Dev'"),
        (
            {"accounts": {"security": "111111111111", "dev": "444444444444"}},
            "missing account(s): shared-services",
        ),
        ({"accounts": {}}, "no accounts"),
        ({"org": "Acme"}, "organisation name"),
        ({"org": "a"}, "organisation name"),
        ({"org": "averyveryverylongorg"}, "organisation name"),
        ({"regions": []}, "no regions"),
        ({"regions": ["us-east-1", "mars"]}, "not an AWS region"),
        ({"regions": ["us-east-1", "us-east-1"]}, "twice"),
        ({"flavour": "gcp"}, "unknown flavour"),
        ({"domain": "not a domain"}, "not a domain"),
        (
            {
                "org": "acme-platform-xy",
                "accounts": {**ACCOUNTS, "shared-services-europe-1": "777777777777"},
                "regions": ["ap-southeast-2"],
            },
            "longer than 63",
        ),
    ],
)
def test_bad_arguments_are_usage_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as error:
        render_files(**{**ARGS, **change})  # type: ignore[arg-type]
    assert message in str(error.value)
    assert error.value.exit_code == 2


def test_a_dependency_on_a_missing_account_is_named(tmp_path: Path) -> None:
    without_logs = {k: ACCOUNTS[k] for k in ("security", "shared-services", "dev")}
    files = render_files(org="acme", accounts=without_logs, regions=["us-east-1"])
    assert not any(p.startswith("logs/") for p in files)  # logs is optional
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    text = (templates / "units.toml").read_text()
    (templates / "units.toml").write_text(
        text.replace(
            'ecr = "shared-services:ecr"', 'ecr = "shared-services:ecr"\narchive = "logs:log-archive"'
        )
    )
    with pytest.raises(UsageError) as error:
        render_files(org="acme", accounts=without_logs, regions=["us-east-1"], templates_dir=templates)
    assert "dev/us-east-1/sample-app needs logs/us-east-1/log-archive" in str(error.value)


def test_refuses_a_non_empty_target_and_force_keeps_other_files(tmp_path: Path) -> None:
    target = tmp_path / "live"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        render_live_repo(target, **ARGS)
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    written = render_live_repo(target, **ARGS, force=True)
    assert (target / "keep.txt").read_text() == "mine"
    assert target / "root.hcl" in written
    assert all(p.is_file() for p in written)
    assert [p.name for p in tmp_path.iterdir()] == ["live"]  # no staging folder left


def test_writes_into_an_empty_folder_and_copies_the_flavours_modules(tmp_path: Path) -> None:
    target = tmp_path / "live"
    target.mkdir()
    written = render_live_repo(target, **ARGS, flavour="demo")
    variables = target / "modules" / "vpc" / "variables.tf"
    assert variables in written
    assert not variables.is_symlink()  # the demo's link to the real variables is resolved
    assert "provider" not in (target / "modules" / "vpc" / "main.tf").read_text()
    assert sorted(written) == written


def test_a_failing_template_leaves_nothing_behind(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    envcommon = templates / "_envcommon" / "vpc.hcl.j2"
    envcommon.write_text(envcommon.read_text().replace("local.name_prefix", "{{ no_such_var }}"))
    target = tmp_path / "live"
    with pytest.raises(ConfigError) as error:
        render_live_repo(target, **ARGS, templates_dir=templates)
    assert "no_such_var" in str(error.value)
    assert error.value.path is not None and error.value.path.endswith("vpc.hcl.j2")
    assert error.value.line == 3
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["templates"]


def test_a_template_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    (templates / "repo" / "common.hcl.j2").write_text("ok\n{% if %}\n")
    with pytest.raises(ConfigError) as error:
        render_files(**ARGS, templates_dir=templates)
    assert error.value.path is not None and error.value.path.endswith("common.hcl.j2")
    assert error.value.line == 2


def test_a_new_unit_kind_is_a_template_and_a_manifest_entry(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    (templates / "_envcommon" / "bastion.hcl.j2").write_text(
        '{% extends "_envcommon/_base.hcl.j2" %}\n{% block inputs %}\n'
        "  vpc_id = dependency.vpc.outputs.vpc_id\n{% endblock %}\n"
    )
    with (templates / "units.toml").open("a") as manifest:
        manifest.write(
            '\n[kinds.bastion]\nmodule = "bastion"\nroles = ["app"]\n'
            'regions = "primary"\n\n[kinds.bastion.dependencies]\nvpc = "vpc"\n'
        )
    files = render_files(**ARGS, templates_dir=templates)
    assert "dev/us-east-1/bastion/terragrunt.hcl" in files
    assert "prod/us-east-1/bastion/terragrunt.hcl" in files
    assert "dev/us-west-2/bastion/terragrunt.hcl" not in files
    assert 'config_path                             = "../vpc"' in files["_envcommon/bastion.hcl"]


def test_manifest_errors_name_the_manifest(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    with (templates / "units.toml").open("a") as manifest:
        manifest.write(
            '\n[kinds.broken]\nmodule = "x"\nroles = ["app"]\n\n'
            '[kinds.broken.dependencies]\nnet = "no-such-kind"\n'
        )
    with pytest.raises(ConfigError) as error:
        load_manifest(templates)
    assert "no-such-kind" in str(error.value)
    assert error.value.path == str(templates / "units.toml")


def test_every_kind_has_a_module_in_both_flavours_with_the_same_interface() -> None:
    manifest = load_manifest()
    for kind in manifest.kinds.values():
        real = read_module(FLAVOURS["aws"] / kind.module)
        demo = read_module(FLAVOURS["demo"] / kind.module)
        assert set(real.variables) == set(demo.variables), kind.module
        assert {n for n, v in real.variables.items() if v.required} == {
            n for n, v in demo.variables.items() if v.required
        }, kind.module
        assert real.outputs == demo.outputs, kind.module
        # Mocks stand in for real outputs: they may only name outputs the module has.
        assert set(kind.mock_outputs) <= real.outputs, kind.name


def test_module_source_forms() -> None:
    root = '${dirname(find_in_parent_folders("root.hcl"))}'
    assert module_source("vpc", None) == f"{root}/modules/vpc"
    assert (
        module_source("vpc", "git::git@github.com:acme/modules.git?ref=v1.2.0")
        == "git::git@github.com:acme/modules.git//vpc?ref=v1.2.0"
    )
    assert (
        module_source("vpc", "git::https://github.com/acme/infra.git//modules?ref=v1")
        == "git::https://github.com/acme/infra.git//modules/vpc?ref=v1"
    )
    assert module_source("vpc", "/srv/modules") == "/srv/modules/vpc"
    assert module_source("vpc", "../infra-modules") == f"{root}/../infra-modules/vpc"


def test_the_route53_unit_and_its_zone_come_only_with_a_domain() -> None:
    """Without --domain no public zone is rendered (an apply would create one for a made-up
    name); with it, the unit and bootstrap.hcl's zone to import name the same domain."""
    without = render_files(**ARGS)
    assert not any("/route53/" in path for path in without)
    assert "domains = []" in without["bootstrap.hcl"]
    with_domain = render_files(**{**ARGS, "domain": "acme.com"})
    assert "shared-services/us-east-1/route53/terragrunt.hcl" in with_domain
    assert 'domains = ["acme.com"]' in with_domain["bootstrap.hcl"]


def test_with_a_domain_each_app_account_has_its_own_zone_for_its_load_balancers() -> None:
    """The parent zone is in shared-services (tier 2); each app account (tier 3) keeps
    <account>.<domain>, delegated by an NS record it writes through the role the route53 unit
    made for it, and its load balancers' records go into that zone of their own account."""
    files = render_files(**{**ARGS, "domain": "acme.com"})
    for app in ("dev", "prod"):
        assert f"{app}/us-east-1/route53-subzone/terragrunt.hcl" in files
        assert f"{app}/us-west-2/route53-subzone/terragrunt.hcl" not in files
    assert not any(p.startswith(("security/", "shared-services/", "logs/")) and "subzone" in p for p in files)
    parent = files["_envcommon/route53.hcl"]
    assert "delegation_account_ids = [for name in local.common.app_accounts" in parent
    subzone = files["_envcommon/route53-subzone.hcl"]
    assert '/shared-services/us-east-1/route53"' in subzone
    assert 'domain_name     = "${local.env}.${local.common.domain_name}"' in subzone
    assert "parent_role_arn = dependency.parent.outputs.delegation_role_arn" in subzone
    assert 'alias               = "parent"' in subzone and "role_arn = var.parent_role_arn" in subzone
    public, internal = files["_envcommon/alb-public.hcl"], files["_envcommon/alb-internal.hcl"]
    assert 'config_path                             = "../../us-east-1/route53-subzone"' in public
    assert "zone_id     = dependency.dns.outputs.zone_id" in public
    assert 'record_name = "${local.aws_region}.${local.env}.${local.common.domain_name}"' in public
    assert 'record_name = "${local.aws_region}.internal.${local.env}.${local.common.domain_name}"' in internal
    demo = render_files(**{**ARGS, "domain": "acme.com", "flavour": "demo"})
    assert "generate" not in demo["_envcommon/route53-subzone.hcl"]


def test_the_other_components_consume_what_bootstrap_makes() -> None:
    files = render_files(**ARGS)
    bootstrap = files["bootstrap.hcl"]
    assert 'passwords = ["master_password"]' in bootstrap
    assert (
        'internal   = ["*.dev.acme.internal", "*.internal.dev.acme.internal", '
        '"*.prod.acme.internal", "*.internal.prod.acme.internal"]'
    ) in bootstrap
    assert 'cloudfront = ["*.acme.internal"]' in bootstrap
    assert 'accounts   = ["dev", "prod"]' in bootstrap
    assert 'secrets = {\n    accounts = ["dev", "prod"]\n  }' in bootstrap
    assert (
        'certificate_domain  = "*.internal.${local.env}.${local.common.domain_name}"'
        in files["_envcommon/alb-internal.hcl"]
    )
    assert "record_name" not in files["_envcommon/alb-public.hcl"]  # no zone without --domain
    assert 'generate "provider_us_east_1"' in files["_envcommon/static-website.hcl"]
    assert 'package_key    = local.packages["hello"]' in files["_envcommon/lambda-hello.hcl"]
    assert "image_tag     = local.image.tag" in files["_envcommon/sample-app.hcl"]
    assert 'hello = "lambda/hello/unbuilt.zip"' in files["artifacts.auto.hcl"]


def test_without_app_accounts_bootstrap_makes_nothing_for_them_and_without_logs_no_config() -> None:
    files = render_files(
        org="acme", accounts={k: ACCOUNTS[k] for k in ("security", "shared-services")}, regions=["us-east-1"]
    )
    assert "passwords = []" in files["bootstrap.hcl"] and "accounts = []" in files["bootstrap.hcl"]
    assert not any("aurora" in p for p in files)
    # They deploy before any logs account: their Config delivers to a bucket of their own.
    assert [p for p in files if "aws-config" in p and p.endswith("/terragrunt.hcl")] == [
        "security/us-east-1/aws-config-local/terragrunt.hcl",
        "shared-services/us-east-1/aws-config-local/terragrunt.hcl",
    ]
    assert "create_bucket  = true" in files["_envcommon/aws-config-local.hcl"]
    assert "log_archive" not in files["_envcommon/aws-config-local.hcl"]
    with_apps = render_files(
        org="acme",
        accounts={k: ACCOUNTS[k] for k in ("security", "shared-services", "dev")},
        regions=["us-east-1"],
    )
    assert "dev/us-east-1/aurora/terragrunt.hcl" in with_apps
    assert not any(p.startswith("dev/") and "aws-config" in p for p in with_apps)  # delivers to logs
