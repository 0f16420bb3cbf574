"""The wrong-account guard is never silently off: a subfolder keeps the repo's accounts and
settings, unknown account ids are refused for apply/destroy, ids and names are checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from refarch.cli import cli
from refarch.config.discover import repo_root
from refarch.errors import ConfigError, ProvisionError, UnsafeLocalState
from refarch.provision.keypairs import key_store_dir
from refarch.repo import load_repo
from refarch.runner.run import load_plan
from tests.helpers import write_tree

DEV = 'locals {\n  account_name = "dev"\n  aws_account_id = "444444444444"\n}\n'
SHARED = 'locals {\n  account_name = "shared-services"\n  aws_account_id = "222222222222"\n}\n'
UNIT = 'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}\n'


def make_repo(root: Path, *, dev_account: str = DEV, toml: str | None = None) -> Path:
    tree = {
        "root.hcl": "",
        "shared/account.hcl": SHARED,
        "shared/us-east-1/region.hcl": 'locals {\n  aws_region = "us-east-1"\n}\n',
        "shared/us-east-1/ecr/terragrunt.hcl": UNIT,
        "dev/account.hcl": dev_account,
        "dev/us-west-2/region.hcl": 'locals {\n  aws_region = "us-west-2"\n}\n',
        "dev/us-west-2/vpc/terragrunt.hcl": UNIT,
        "dev/us-west-2/app/terragrunt.hcl": UNIT
        + 'dependency "ecr" {\n  config_path = "../../../shared/us-east-1/ecr"\n}\n',
    }
    if toml is not None:
        tree["refarch.toml"] = toml
    return write_tree(root, tree)


def test_repo_root_is_found_from_a_subfolder(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "live")
    assert repo_root(root / "dev" / "us-west-2" / "app") == root
    (root / "root.hcl").unlink()
    assert repo_root(root / "dev" / "us-west-2") == root  # the parent of the account folder
    (root / "refarch.toml").write_text("")
    assert repo_root(root / "dev") == root


def test_a_subfolder_keeps_account_region_settings_and_what_it_depends_on(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "live", toml='tiers = [["shared-services"], ["dev"]]\n')
    repo = load_repo(root / "dev" / "us-west-2" / "app")
    assert repo.root == root
    assert sorted(repo.units) == ["dev/us-west-2/app", "shared/us-east-1/ecr"]  # as --include selects
    app = repo.unit("dev/us-west-2/app")
    # tier 2 comes from the root's refarch.toml (the default tiers would say 3)
    assert (app.account, app.account_id, app.region, app.tier) == ("dev", "444444444444", "us-west-2", 2)
    result = CliRunner().invoke(cli, ["plan", str(root / "dev"), "--json"])
    assert result.exit_code == 0, result.output
    assert "dev/us-west-2/vpc" in result.output and "shared/us-east-1/ecr" in result.output


def test_a_unit_of_an_unknown_account_is_refused_for_apply_and_destroy(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "live", dev_account='locals {\n  account_name = "dev"\n}\n')
    for action in ("apply", "destroy"):
        with pytest.raises(ConfigError) as caught:
            load_plan(root, action)
        message = str(caught.value)
        assert f"refusing to {action} 2 unit(s) whose AWS account id is unknown" in message
        assert "dev/us-west-2/app (account dev)" in message and "aws_account_id" in message
        assert caught.value.exit_code == 2
        assert load_plan(root, action, allow_unknown_account=True).units
    assert load_plan(root, "plan").units  # reading is not refused
    result = CliRunner().invoke(cli, ["apply", str(root), "--non-interactive"])
    assert result.exit_code == 2 and "--allow-unknown-account" in result.output


@pytest.mark.parametrize("account_id", ['"1234"', '"44444444444a"', '"4444444444444"'])
def test_an_account_id_must_be_twelve_digits(tmp_path: Path, account_id: str) -> None:
    root = make_repo(
        tmp_path / "live",
        dev_account=f'locals {{\n  account_name = "dev"\n  aws_account_id = {account_id}\n}}\n',
    )
    result = CliRunner().invoke(cli, ["apply", str(root), "--non-interactive"])
    assert result.exit_code == 2
    assert "dev/account.hcl:3: aws_account_id" in result.output and "12-digit" in result.output
    result = CliRunner().invoke(cli, ["plan", str(root)])  # reading touches no AWS: a warning
    assert result.exit_code == 0
    assert "warning: dev/account.hcl:3: aws_account_id" in result.output and "refuse" in result.output


@pytest.mark.parametrize("name", ["../x", "..", "a/b", ""])
def test_an_account_name_must_be_a_safe_folder_name(tmp_path: Path, name: str) -> None:
    root = make_repo(
        tmp_path / "live",
        dev_account=f'locals {{\n  account_name = "{name}"\n  aws_account_id = "444444444444"\n}}\n',
    )
    result = CliRunner().invoke(cli, ["plan", str(root)])
    assert result.exit_code == 2
    assert "dev/account.hcl:2: account_name" in result.output and "safe folder name" in result.output


def test_key_files_stay_inside_keys_dir_which_is_made_private(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert key_store_dir(keys, "dev") == keys.resolve() / "dev"
    assert keys.stat().st_mode & 0o777 == 0o700
    for name in ("../x", "..", "a/../../y"):
        with pytest.raises(ProvisionError, match="outside"):
            key_store_dir(keys, name)
    os.chmod(keys, 0o777)  # noqa: S103 - the refusal under test
    with pytest.raises(UnsafeLocalState, match="writable by group or others"):
        key_store_dir(keys, "dev")
    key_store_dir(tmp_path / "dry", "dev", create=False)
    assert not (tmp_path / "dry").exists()  # a dry run makes nothing
