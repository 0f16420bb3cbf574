"""Terragrunt semantics: includes, expose, merging, read_terragrunt_config, path functions."""

import pytest

from refarch import load_repo
from refarch.config import evaluate_unit
from refarch.config.cache import CACHE_FILE
from refarch.errors import (
    ConfigError,
    DependencyCycle,
    EvaluationError,
    HclSyntaxError,
    MissingDependency,
    RefarchWarning,
)
from tests.helpers import write_tree

ROOT = """
locals {
  acct = read_terragrunt_config(find_in_parent_folders("account.hcl"))
  name = local.acct.locals.account_name
}
remote_state {
  backend = "s3"
  config = {
    bucket = "tf-${local.name}"
    key    = "${path_relative_to_include()}/terraform.tfstate"
  }
}
inputs = {
  from_root = "root"
  shared    = "root"
  nested    = { a = 1 }
}
"""


def repo(tmp_path, files):
    return load_repo(write_tree(tmp_path, files), cache=False)


def test_include_merge_shallow_and_path_functions(tmp_path):
    r = repo(
        tmp_path,
        {
            "root.hcl": ROOT,
            "dev/account.hcl": 'locals {\n  account_name = "dev"\n  aws_account_id = "444444444444"\n}\n',
            "dev/app/terragrunt.hcl": """
            include "root" {
              path   = find_in_parent_folders("root.hcl")
              expose = true
            }
            inputs = {
              shared = "child"
              nested = { b = 2 }
              rel_to   = path_relative_to_include()
              rel_from = path_relative_from_include()
              parent   = basename(get_parent_terragrunt_dir())
              here     = basename(get_terragrunt_dir())
              exposed  = include.root.locals.name
            }
        """,
        },
    )
    unit = r.unit("dev/app")
    assert unit.account == "dev" and unit.account_id == "444444444444"
    assert unit.remote_state.config == {"bucket": "tf-dev", "key": "dev/app/terraform.tfstate"}
    assert unit.inputs == {
        "from_root": "root",
        "shared": "child",
        "nested": {"b": 2},
        "rel_to": "dev/app",
        "rel_from": "../..",
        "parent": tmp_path.name,
        "here": "app",
        "exposed": "dev",
    }
    assert set(unit.files) == {"root.hcl", "dev/account.hcl", "dev/app/terragrunt.hcl"}


def test_deep_merge_strategy_merges_maps_and_lists(tmp_path):
    r = repo(
        tmp_path,
        {
            "root.hcl": "inputs = {\n  m = { a = 1 }\n  l = [1]\n}\n",
            "u/terragrunt.hcl": """
            include {
              path           = find_in_parent_folders("root.hcl")
              merge_strategy = "deep"
            }
            inputs = {
              m = { b = 2 }
              l = [2]
            }
        """,
        },
    )
    assert r.unit("u").inputs == {"m": {"a": 1, "b": 2}, "l": [1, 2]}


def test_no_merge_keeps_parent_out(tmp_path):
    r = repo(
        tmp_path,
        {
            "root.hcl": "inputs = {\n  a = 1\n}\n",
            "u/terragrunt.hcl": """
            include "r" {
              path           = find_in_parent_folders("root.hcl")
              merge_strategy = "no_merge"
              expose         = true
            }
            inputs = {
              b = include.r.inputs.a
            }
        """,
        },
    )
    assert r.unit("u").inputs == {"b": 1}


def test_included_dependency_resolves_from_the_including_unit(tmp_path):
    r = repo(
        tmp_path,
        {
            "_envcommon/app.hcl": """
            dependency "vpc" {
              config_path  = "../vpc"
              mock_outputs = { vpc_id = "vpc-mock" }
            }
            inputs = { vpc_id = dependency.vpc.outputs.vpc_id }
        """,
            "dev/vpc/terragrunt.hcl": "",
            "dev/app/terragrunt.hcl": """
            include "envcommon" {
              path = "${get_terragrunt_dir()}/../../_envcommon/app.hcl"
            }
        """,
        },
    )
    unit = r.unit("dev/app")
    assert unit.dependencies == ("dev/vpc",)
    assert unit.inputs == {"vpc_id": "vpc-mock"}
    assert unit.dependency_blocks[0].mock_outputs == {"vpc_id": "vpc-mock"}


def test_dependency_without_mocks_is_unknown_and_real_outputs_replace_it(tmp_path):
    r = repo(
        tmp_path,
        {
            "vpc/terragrunt.hcl": "",
            "app/terragrunt.hcl": """
            dependency "vpc" {
              config_path = "../vpc"
            }
            dependencies {
              paths = ["../vpc"]
            }
            inputs = {
              vpc_id = dependency.vpc.outputs.vpc_id
              name   = "app-${dependency.vpc.outputs.name}"
            }
        """,
        },
    )
    assert r.unit("app").inputs["vpc_id"] == "(known after apply: dependency.vpc.outputs.vpc_id)"
    real = evaluate_unit(r, "app", outputs={"vpc": {"vpc_id": "vpc-123", "name": "main"}})
    assert real.inputs == {"vpc_id": "vpc-123", "name": "app-main"}


def test_skip_exclude_prevent_destroy_iam_role_generate(tmp_path):
    r = repo(
        tmp_path,
        {
            "a/terragrunt.hcl": """
            skip = true
            iam_role = "arn:aws:iam::111111111111:role/x"
            prevent_destroy = true
            generate "provider" {
              path      = "provider.tf"
              if_exists = "overwrite"
              contents  = <<EOF
            provider "aws" {}
            EOF
            }
        """,
            "b/terragrunt.hcl": """
            exclude {
              if      = get_env("SKIP_B", "no") == "yes"
              actions = ["destroy"]
            }
            terraform {
              source = "../modules//vpc?ref=v1"
              extra_arguments "retry" {
                commands = ["apply"]
              }
            }
        """,
        },
    )
    a, b = r.unit("a"), r.unit("b")
    assert a.skip and a.prevent_destroy and a.iam_role == "arn:aws:iam::111111111111:role/x"
    assert a.generate[0].name == "provider" and a.generate[0].if_exists == "overwrite"
    assert a.generate[0].contents == 'provider "aws" {}\n'
    assert b.exclude is not None and not b.exclude.if_
    assert b.source == "../modules//vpc?ref=v1"
    assert b.terraform == {"extra_arguments": {"retry": {"commands": ["apply"]}}}


def test_exclude_block_applies_per_action(tmp_path):
    files = {"b/terragrunt.hcl": 'exclude {\n  if = true\n  actions = ["destroy"]\n}\n'}
    unit = repo(tmp_path, files).unit("b")
    assert unit.skipped_for("destroy") and not unit.skipped_for("apply")


def test_read_terragrunt_config_default_and_parse_once(tmp_path):
    write_tree(
        tmp_path,
        {
            "common.hcl": 'locals {\n  x = "shared"\n}\n',
            **{
                f"u{i}/terragrunt.hcl": """
            locals {
              c = read_terragrunt_config(find_in_parent_folders("common.hcl"))
              d = read_terragrunt_config("missing.hcl", { locals = { y = "default" } })
            }
            inputs = { x = local.c.locals.x, y = local.d.locals.y }
        """
                for i in range(3)
            },
        },
    )
    from refarch.config import discover
    from refarch.config.evaluate import Loader

    r = load_repo(tmp_path, cache=False)
    assert r.unit("u1").inputs == {"x": "shared", "y": "default"}
    loader = Loader(tmp_path.resolve(), env={})
    for i in range(3):
        discover._evaluate_new_unit(loader, tmp_path.resolve() / f"u{i}/terragrunt.hcl", r.settings)
    assert loader.parse_count == 4  # three units + common.hcl once


@pytest.mark.parametrize(
    ("files", "error", "where"),
    [
        (
            {
                "a/terragrunt.hcl": 'dependency "b" {\n  config_path = "../b"\n}\n',
                "b/terragrunt.hcl": 'dependencies {\n  paths = ["../c"]\n}\n',
                "c/terragrunt.hcl": 'dependencies {\n  paths = ["../a"]\n}\n',
            },
            DependencyCycle,
            "a -> b -> c -> a",
        ),
        (
            {"a/terragrunt.hcl": 'dependency "x" {\n  config_path = "../nope"\n}\n'},
            MissingDependency,
            "a/terragrunt.hcl:1: unit a depends on nope, which has no terragrunt.hcl",
        ),
        (
            {"a/terragrunt.hcl": "locals {\n  x = nosuch(1)\n}\n"},
            EvaluationError,
            "a/terragrunt.hcl:2: function nosuch() is not supported",
        ),
        ({"a/terragrunt.hcl": "locals {\n  x = \n}\n"}, HclSyntaxError, "a/terragrunt.hcl:2"),
        (
            {"a/terragrunt.hcl": 'include {\n  path = find_in_parent_folders("root.hcl")\n}\n'},
            EvaluationError,
            "a/terragrunt.hcl:2: find_in_parent_folders(): no root.hcl",
        ),
        (
            {
                "a/terragrunt.hcl": 'include {\n  path = "../mid.hcl"\n}\n',
                "mid.hcl": 'include {\n  path = "root.hcl"\n}\n',
                "root.hcl": "",
            },
            ConfigError,
            "mid.hcl: an included file has include blocks of its own",
        ),
        (
            {
                "a/terragrunt.hcl": 'dependency "x" {\n  config_path = dependency.y.outputs.p\n}\n'
                'dependency "y" {\n  config_path = "../b"\n}\n',
                "b/terragrunt.hcl": "",
            },
            ConfigError,
            "must be a path known before apply",
        ),
        (
            {"a/terragrunt.hcl": "locals {\n  a = local.b\n  b = local.a\n}\n"},
            EvaluationError,
            "refers to itself",
        ),
        (
            {"a/terragrunt.hcl": "inputs = {\n  x = include.root.locals.y\n}\n"},
            EvaluationError,
            "a/terragrunt.hcl:2: include.root is not available",
        ),
    ],
)
def test_errors_name_file_line_and_what(tmp_path, files, error, where):
    with pytest.raises(error) as info:
        repo(tmp_path, files)
    assert where in str(info.value)


def test_dependency_on_a_later_tier_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"security/iam .*depends on dev/vpc.*later tier"):
        repo(
            tmp_path,
            {
                "security/account.hcl": 'locals {\n  account_name = "security"\n}\n',
                "dev/account.hcl": 'locals {\n  account_name = "dev"\n}\n',
                "dev/vpc/terragrunt.hcl": "",
                "security/iam/terragrunt.hcl": 'dependencies {\n  paths = ["../../dev/vpc"]\n}\n',
            },
        )


def test_root_terragrunt_hcl_included_by_units_is_not_a_unit(tmp_path):
    r = repo(
        tmp_path,
        {
            "terragrunt.hcl": "inputs = { a = 1 }\n",
            "app/terragrunt.hcl": "include {\n  path = find_in_parent_folders()\n}\n",
        },
    )
    assert list(r.units) == ["app"]
    assert r.unit("app").inputs == {"a": 1}


def test_tiers_from_refarch_toml(tmp_path):
    r = repo(
        tmp_path,
        {
            "refarch.toml": 'tiers = [["logs"], ["*"]]\n',
            "logs/account.hcl": 'locals {\n  account_name = "logs"\n}\n',
            "logs/x/terragrunt.hcl": "",
            "dev/account.hcl": 'locals {\n  account_name = "dev"\n}\n',
            "dev/y/terragrunt.hcl": "",
        },
    )
    assert r.unit("logs/x").tier == 1 and r.unit("dev/y").tier == 2


def test_cache_reuses_units_and_notices_changes(tmp_path):
    write_tree(
        tmp_path,
        {
            "common.hcl": 'locals {\n  v = "one"\n}\n',
            "u/terragrunt.hcl": "locals {\n  c = read_terragrunt_config("
            'find_in_parent_folders("common.hcl"))\n}\n'
            'inputs = {\n  v = local.c.locals.v\n  e = get_env("REFARCH_T", "d")\n}\n',
        },
    )
    first = load_repo(tmp_path, env={})
    assert (tmp_path / ".refarch/cache" / CACHE_FILE).is_file()
    again = load_repo(tmp_path, env={})
    assert again.unit("u") == first.unit("u")
    (tmp_path / "common.hcl").write_text('locals {\n  v = "two"\n}\n')
    assert load_repo(tmp_path, env={}).unit("u").inputs["v"] == "two"
    changed_env = load_repo(tmp_path, env={"REFARCH_T": "set"})
    assert changed_env.unit("u").inputs["e"] == "set"
    assert changed_env.unit("u").digest != first.unit("u").digest
    # a closer file appears where find_in_parent_folders looks: the cache must notice
    (tmp_path / "u" / "common.hcl").write_text("")
    (tmp_path / "u" / "inner").mkdir()
    assert "common.hcl" in load_repo(tmp_path, env={}).unit("u").files


def test_cache_is_private_and_never_holds_an_env_value_in_clear(tmp_path):
    write_tree(
        tmp_path,
        {
            "u/terragrunt.hcl": 'inputs = {\n  p = get_env("DB_PASSWORD")\n}\n',
            "v/terragrunt.hcl": 'inputs = {\n  r = get_env("REGION_NAME", "us-east-1")\n}\n',
        },
    )
    env = {"DB_PASSWORD": "hunter2-very-secret"}  # REGION_NAME unset: v is cached
    load_repo(tmp_path, env=env)
    cache = tmp_path / ".refarch/cache" / CACHE_FILE
    assert cache.stat().st_mode & 0o777 == 0o600
    assert cache.parent.stat().st_mode & 0o777 == 0o700
    data = cache.read_bytes()
    assert b"hunter2-very-secret" not in data and b"us-east-1" in data
    # the unit holding the env value is evaluated again (not cached), with the new value
    again = load_repo(tmp_path, env={**env, "DB_PASSWORD": "another-secret"})
    assert again.unit("u").inputs["p"] == "another-secret"


def test_cache_survives_a_corrupt_file(tmp_path):
    write_tree(tmp_path, {"u/terragrunt.hcl": "inputs = { a = 1 }\n"})
    load_repo(tmp_path, env={})
    (tmp_path / ".refarch/cache" / CACHE_FILE).write_bytes(b"\x00garbage")
    with pytest.warns(RefarchWarning, match="verification failed"):
        assert load_repo(tmp_path, env={}).unit("u").inputs == {"a": 1}


def test_cache_reuses_unchanged_units_when_one_file_changes(tmp_path):
    write_tree(
        tmp_path, {"a/terragrunt.hcl": "inputs = { v = 1 }\n", "b/terragrunt.hcl": "inputs = { v = 2 }\n"}
    )
    load_repo(tmp_path, env={})
    (tmp_path / "b/terragrunt.hcl").write_text("inputs = { v = 3 }\n")
    from refarch.config import discover

    parsed = []
    real = discover._evaluate_new_unit

    def spy(loader, file, settings, outputs=None):
        parsed.append(file.parent.name)
        return real(loader, file, settings, outputs)

    discover._evaluate_new_unit = spy
    try:
        repo = load_repo(tmp_path, env={})
    finally:
        discover._evaluate_new_unit = real
    assert parsed == ["b"]
    assert repo.unit("a").inputs == {"v": 1} and repo.unit("b").inputs == {"v": 3}


def test_a_unit_at_the_repo_root_finds_the_root_account_hcl(tmp_path):
    r = repo(
        tmp_path,
        {
            "account.hcl": 'locals {\n  account_name = "solo"\n  aws_account_id = "123456789012"\n}\n',
            "terragrunt.hcl": "inputs = {}\n",
            "sub/terragrunt.hcl": "inputs = {}\n",
        },
    )
    assert r.unit(".").account == "solo" and r.unit("sub").account == "solo"


def test_deep_merge_combines_dependency_blocks_across_includes(tmp_path):
    r = repo(
        tmp_path,
        {
            "vpc/terragrunt.hcl": "",
            "base.hcl": 'dependency "vpc" {\n  config_path = "../vpc"\n'
            '  mock_outputs = { id = "vpc-1" }\n}\n',
            "app/terragrunt.hcl": """
            include "base" {
              path           = "../base.hcl"
              merge_strategy = "deep"
            }
            dependency "vpc" {
              mock_outputs = { cidr = "10.0.0.0/16" }
            }
            inputs = {
              id   = dependency.vpc.outputs.id
              cidr = dependency.vpc.outputs.cidr
            }
        """,
        },
    )
    assert r.unit("app").inputs == {"id": "vpc-1", "cidr": "10.0.0.0/16"}
    assert r.unit("app").dependencies == ("vpc",)


def test_exposed_include_shows_its_own_dependency_block(tmp_path):
    r = repo(
        tmp_path,
        {
            "vpc/terragrunt.hcl": "",
            "dep.hcl": 'dependency "vpc" {\n  config_path = "../vpc"\n}\n',
            "app/terragrunt.hcl": """
            include "dep" {
              path   = "../dep.hcl"
              expose = true
            }
            dependency "vpc" {
              config_path  = include.dep.dependency.vpc.config_path
              mock_outputs = { id = "x" }
            }
            inputs = { id = dependency.vpc.outputs.id }
        """,
        },
    )
    assert r.unit("app").inputs == {"id": "x"} and r.unit("app").dependencies == ("vpc",)


def test_get_aws_account_id_is_the_account_the_unit_runs_in(tmp_path):
    r = repo(
        tmp_path,
        {
            "root.hcl": 'remote_state {\n  backend = "s3"\n  config = {\n'
            '    bucket = "tf-state-${get_aws_account_id()}"\n  }\n}\n',
            "shared.hcl": 'locals {\n  owner = "acct-${get_aws_account_id()}"\n}\n',
            "dev/account.hcl": 'locals {\n  account_name = "dev"\n  aws_account_id = "444444444444"\n}\n',
            "prod/account.hcl": 'locals {\n  account_name = "prod"\n  aws_account_id = "666666666666"\n}\n',
            "nameless/account.hcl": 'locals {\n  account_name = "nameless"\n}\n',
            **{
                f"{acct}/app/terragrunt.hcl": """
                include "root" {
                  path = find_in_parent_folders("root.hcl")
                }
                inputs = {
                  owner = read_terragrunt_config(find_in_parent_folders("shared.hcl")).locals.owner
                }
                """
                for acct in ("dev", "prod", "nameless")
            },
        },
    )
    assert r.unit("dev/app").remote_state.config == {"bucket": "tf-state-444444444444"}
    assert r.unit("prod/app").remote_state.config == {"bucket": "tf-state-666666666666"}
    assert r.unit("dev/app").inputs == {"owner": "acct-444444444444"}
    assert r.unit("prod/app").inputs == {"owner": "acct-666666666666"}
    assert r.unit("nameless/app").inputs == {"owner": "(known after apply: get_aws_account_id())"}


UNIT_WITH_ROOT = 'include "root" {\n  path = find_in_parent_folders("root.hcl")\n  expose = true\n}\n'
UNIT_WITH_ROOT += "inputs = { here = include.root.locals.here, probe = include.root.locals.probe }\n"


def test_an_included_file_is_evaluated_once_per_context_it_depends_on(tmp_path):
    """Issue 20.3: each local, attribute and block of an included file is evaluated once per
    distinct answer of what it read of the unit's context, and shared otherwise."""
    from refarch.config import discover
    from refarch.config.evaluate import Loader

    units = {f"{acct}/u{i}/terragrunt.hcl": UNIT_WITH_ROOT for acct in ("dev", "prod") for i in range(3)}
    write_tree(
        tmp_path,
        {
            "root.hcl": ROOT.replace(
                "locals {",
                "locals {\n  here = get_terragrunt_dir()\n"
                '  probe = try(read_terragrunt_config("extra.hcl").locals.v, "none")',
            ),
            "dev/account.hcl": 'locals {\n  account_name = "dev"\n}\n',
            "prod/account.hcl": 'locals {\n  account_name = "prod"\n}\n',
            "prod/u1/extra.hcl": 'locals {\n  v = "extra"\n}\n',
            **units,
        },
    )
    root = tmp_path.resolve()
    r = load_repo(root, cache=False)
    loader = Loader(root, env={})
    for path in sorted(units):
        unit, _, _ = discover._evaluate_new_unit(loader, root / path, r.settings)
        assert unit == r.unit(path.removesuffix("/terragrunt.hcl"))
        assert unit.remote_state is not None
        assert unit.remote_state.config["key"] == path.replace("terragrunt.hcl", "terraform.tfstate")
        assert unit.remote_state.config["bucket"] == f"tf-{path.split('/')[0]}"
        assert unit.locals == {}
        assert [f for f in unit.files if f.endswith("account.hcl")] == [f"{path.split('/')[0]}/account.hcl"]
        assert unit.inputs["here"] == str(root / path).removesuffix("/terragrunt.hcl")
        assert unit.inputs["probe"] == ("extra" if path.startswith("prod/u1/") else "none")

    def evaluations(key):
        memo = loader.memo[root / "root.hcl", key]
        return memo.misses

    assert evaluations(("local", "acct")) == 2  # once per account.hcl found
    assert evaluations(("local", "name")) == 2
    assert evaluations(("local", "here")) == 6  # the unit's own folder: once per unit
    assert evaluations(("local", "probe")) == 2  # a relative read: "missing" (5 units) or found
    assert evaluations(("item", 1)) == 6  # remote_state: path_relative_to_include() per unit
    assert evaluations(("item", 2)) == 1  # inputs: constant
    # Read targets: evaluated once each.
    assert {loader.rel(p): len(v) for p, v in loader.reads.items()} == {
        "dev/account.hcl": 1,
        "prod/account.hcl": 1,
        "prod/u1/extra.hcl": 1,
    }


def test_a_read_target_is_evaluated_again_only_for_what_it_read_of_the_reader(tmp_path):
    from refarch.config.evaluate import Loader, Records, read_config

    write_tree(
        tmp_path,
        {
            "plain.hcl": 'locals {\n  x = "plain"\n}\n',
            "original.hcl": "locals {\n  x = get_original_terragrunt_dir()\n}\n",
            "a/terragrunt.hcl": "",
            "b/terragrunt.hcl": "",
        },
    )
    root = tmp_path.resolve()
    loader = Loader(root, env={})
    for reader in ("a", "b"):
        plain, _ = read_config(loader, root / "plain.hcl", root / reader)
        original, records = read_config(loader, root / "original.hcl", root / reader)
        assert plain["locals"]["x"] == "plain"
        assert original["locals"]["x"] == str(root / reader)
        assert records.context == {"original_dir"}
    assert len(loader.reads[root / "plain.hcl"]) == 1
    assert len(loader.reads[root / "original.hcl"]) == 2
    assert Records().context == set()


UNIT_READING_COMMON = (
    'locals {\n  c = read_terragrunt_config(find_in_parent_folders("common.hcl"))\n}\n'
    "inputs = { v = local.c.locals.v }\n"
)


def test_a_warm_load_trusts_a_settled_files_status_and_notices_any_change(tmp_path, monkeypatch):
    import os

    from refarch import files
    from refarch.config import cache

    monkeypatch.setattr(cache, "SETTLED_NS", 0)  # files written before the load count as settled
    write_tree(
        tmp_path, {"common.hcl": 'locals {\n  v = "one"\n}\n', "u/terragrunt.hcl": UNIT_READING_COMMON}
    )
    load_repo(tmp_path, env={})
    reads = []
    real = files.read_bounded
    monkeypatch.setattr(files, "read_bounded", lambda path, **kw: reads.append(path) or real(path, **kw))
    assert load_repo(tmp_path, env={}).unit("u").inputs == {"v": "one"}
    assert not [p for p in reads if p.name.endswith(".hcl")]  # known unchanged by their status
    # Same size, mtime put back: the status still changes (ctime), and the change is seen.
    common_file = tmp_path / "common.hcl"
    before = common_file.stat()
    common_file.write_text('locals {\n  v = "two"\n}\n')
    os.utime(common_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert load_repo(tmp_path, env={}).unit("u").inputs == {"v": "two"}
