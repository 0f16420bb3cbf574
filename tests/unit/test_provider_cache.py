"""The machine's provider cache: which inits may write it, and the lock that keeps them apart."""

import fcntl
import os
import re
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from refarch.engines.provider_cache import (
    LOCK_FILE,
    MAY_BREAK_LOCK_FILE,
    WARM_DIR,
    cache_dir,
    cache_environment,
    init_lock,
    init_writes_cache,
    requirements,
)
from refarch.errors import UnsafeLocalState

AWS = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}
"""


def module(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "main.tf").write_text(text)
    return folder


def test_the_cache_is_the_users_one_per_machine_unless_told_otherwise(tmp_path):
    home = {"HOME": str(tmp_path)}
    assert cache_dir(home) == tmp_path / ".cache" / "refarch" / "plugins"
    assert cache_dir({**home, "XDG_CACHE_HOME": "/x"}) == Path("/x/refarch/plugins")
    assert cache_dir(home, "~/tf-plugins") == Path("~/tf-plugins").expanduser()
    assert cache_dir({**home, "TF_PLUGIN_CACHE_DIR": "/mine"}, "/configured") == Path("/mine")


def test_requirements_name_what_init_installs(tmp_path):
    free = module(tmp_path, "free", 'variable "x" {}\noutput "y" { value = var.x }\n')
    assert requirements(free) is None  # nothing to install, nothing to lock
    pinned = module(tmp_path, "pinned", AWS)
    implied = module(tmp_path, "implied", 'resource "aws_s3_bucket" "b" {}\n')
    assert requirements(pinned) and requirements(implied) and requirements(pinned) != requirements(implied)
    assert requirements(module(tmp_path, "same", AWS + 'output "z" { value = 1 }\n')) == requirements(pinned)
    (pinned / ".terraform.lock.hcl").write_text('provider "registry.terraform.io/hashicorp/aws" {}\n')
    assert requirements(pinned) != requirements(module(tmp_path, "unlocked", AWS))


def test_the_first_init_of_a_requirement_set_is_alone_later_ones_share(tmp_path):
    cache = tmp_path / "cache"
    with init_lock(cache, "k1") as ok:
        ok[0] = True
    assert (cache / WARM_DIR).is_dir() and len(list((cache / WARM_DIR).iterdir())) == 1
    # Warm now: a shared hold, which another shared hold does not wait for ...
    with init_lock(cache, "k1"), init_lock(cache, "k1"):
        pass
    # ... while a cold set (or a failed first init) waits for every other holder.
    with init_lock(cache, "k2") as ok:
        ok[0] = False
    assert len(list((cache / WARM_DIR).iterdir())) == 1


def test_a_cold_init_waits_while_another_init_holds_the_cache(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    fd = os.open(cache / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)  # a warm init of another unit is linking from the cache
    entered = threading.Event()

    def cold_init():
        with init_lock(cache, "cold"):
            entered.set()

    worker = threading.Thread(target=cold_init)
    worker.start()
    time.sleep(0.3)
    assert not entered.is_set()  # it would install while the other one reads
    os.close(fd)
    worker.join(5)
    assert entered.is_set()


def test_a_cache_someone_else_can_write_is_refused(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    with pytest.raises(UnsafeLocalState), init_lock(cache, "k"):
        pass


def test_a_wrapper_module_is_locked_for_the_providers_of_the_modules_it_calls(tmp_path):
    """A root with no provider of its own still installs its modules' providers (issue 20.4)."""
    wrapper = module(tmp_path, "wrapper", 'module "inner" {\n  source = "./inner"\n  name = "x"\n}\n')
    inner = module(wrapper, "inner", AWS)
    module(inner, "deeper", 'resource "random_id" "r" {\n  byte_length = 4\n}\n')
    (inner / "main.tf").write_text(AWS + 'module "deeper" {\n  source = "./deeper"\n}\n')
    key = requirements(wrapper)
    assert key is not None  # the cache is locked for its init
    (inner / "deeper" / "main.tf").write_text('resource "null_resource" "r" {}\n')
    assert requirements(wrapper) not in (None, key)  # a nested module's providers count too
    # Modules that call each other do not loop.
    (inner / "deeper" / "main.tf").write_text('module "back" {\n  source = "../"\n}\n')
    assert requirements(wrapper) is not None


def test_a_remote_module_is_locked_before_and_read_after_its_download(tmp_path):
    remote = 'module "vpc" {\n  source  = "terraform-aws-modules/vpc/aws"\n  version = "5.0.0"\n}\n'
    root = module(tmp_path, "root", remote)
    before = requirements(root)
    assert before is not None  # what it installs is unknown until init: locked
    assert requirements(module(tmp_path, "other", remote.replace("5.0.0", "5.1.0"))) != before
    # After init: the downloaded module's providers are read from TF_DATA_DIR's manifest.
    data = tmp_path / "tfdata"
    (data / "modules" / "vpc").mkdir(parents=True)
    (data / "modules" / "vpc" / "main.tf").write_text(AWS)
    (data / "modules" / "modules.json").write_text(
        '{"Modules": [{"Key": "", "Source": "", "Dir": "."},'
        f' {{"Key": "vpc", "Source": "x", "Dir": "{data / "modules" / "vpc"}"}}]}}'
    )
    after = requirements(root, data)
    assert after not in (None, before)
    (data / "modules" / "vpc" / "main.tf").write_text(AWS.replace("5.100.0", "5.99.0"))
    assert requirements(root, data) != after


def test_init_upgrade_is_always_alone(tmp_path):
    cache = tmp_path / "cache"
    with init_lock(cache, "k1") as ok:
        ok[0] = True
    cache_fd = os.open(cache / LOCK_FILE, os.O_RDWR)
    fcntl.flock(cache_fd, fcntl.LOCK_SH)  # a warm init is linking from the cache
    entered = threading.Event()

    def upgrade():
        with init_lock(cache, "k1", writes=True):
            entered.set()

    worker = threading.Thread(target=upgrade)
    worker.start()
    time.sleep(0.2)
    assert not entered.is_set()  # -upgrade may install newer providers: it waits
    os.close(cache_fd)
    worker.join(5)
    assert entered.is_set()


def test_a_warm_init_that_would_write_the_cache_holds_it_alone(tmp_path):
    cache = tmp_path / "cache"
    with init_lock(cache, "k1") as ok:
        ok[0] = True
    fd = os.open(cache / LOCK_FILE, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_SH)  # a warm init linking from the cache
    entered = threading.Event()

    def writing_init():
        with init_lock(cache, "k1", writes=True):
            entered.set()

    worker = threading.Thread(target=writing_init)
    worker.start()
    time.sleep(0.3)
    assert not entered.is_set()
    os.close(fd)
    worker.join(5)
    assert entered.is_set()


def test_refarch_lets_an_init_without_a_lock_file_link_from_its_cache_unless_the_user_says_no(
    tmp_path,
):
    home = {"HOME": str(tmp_path)}
    env = cache_environment(home)
    assert env[MAY_BREAK_LOCK_FILE] == "true"
    assert cache_environment({**home, MAY_BREAK_LOCK_FILE: ""})[MAY_BREAK_LOCK_FILE] == ""
    folder = module(tmp_path, "m", AWS)
    assert not init_writes_cache(folder, env)
    assert init_writes_cache(folder, {MAY_BREAK_LOCK_FILE: ""})  # the user's "no": it writes
    (folder / ".terraform.lock.hcl").write_text("")
    assert not init_writes_cache(folder, {})  # a lock file: Terraform links what it records


def _terraform_at_least_1_4() -> str | None:
    """A Terraform >= 1.4 on PATH (the one whose cache needs a lock file), if any."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        binary = shutil.which("terraform", path=folder)
        if binary is None:
            continue
        out = subprocess.run([binary, "version"], capture_output=True, text=True, check=False).stdout
        found = re.match(r"Terraform v(\d+)\.(\d+)", out)
        if found and (int(found[1]), int(found[2])) >= (1, 4):
            return binary
    return None


TERRAFORM_1_4 = _terraform_at_least_1_4()


@pytest.mark.skipif(TERRAFORM_1_4 is None, reason="no Terraform >= 1.4 on PATH")
def test_with_refarchs_environment_terraform_links_from_the_cache_instead_of_installing_again(
    tmp_path,
):
    """Terraform >= 1.4 itself, a stand-in provider in a filesystem mirror (init never starts
    it): without a lock file a second init installs into the cache again (what races when
    inits run in parallel); with the environment refarch sets it only links. About 0.3 s."""
    assert TERRAFORM_1_4 is not None
    platform = tmp_path / "mirror/example.com/ns/fake/1.0.0/linux_amd64"
    platform.mkdir(parents=True)
    (platform / "terraform-provider-fake_v1.0.0").write_text("#!/bin/sh\nexit 1\n")
    (platform / "terraform-provider-fake_v1.0.0").chmod(0o755)
    cli = tmp_path / "cli.tfrc"
    cli.write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{tmp_path / "mirror"}"\n  }}\n}}\n'
    )
    fake = 'terraform {\n  required_providers {\n    fake = { source = "example.com/ns/fake" }\n  }\n}\n'
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TF_CLI_CONFIG_FILE": str(cli)}
    base |= {"CHECKPOINT_DISABLE": "1", "TF_PLUGIN_CACHE_DIR": str(tmp_path / "cache")}

    def init(name: str, env: dict[str, str]) -> str:
        folder = module(tmp_path, name, fake)
        result = subprocess.run(
            [TERRAFORM_1_4, "init", "-input=false", "-no-color"],
            cwd=folder, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return result.stdout

    (tmp_path / "cache").mkdir(mode=0o700)
    assert "Installing example.com/ns/fake" in init("first", base)
    assert "Installing example.com/ns/fake" in init("plain", {**base, MAY_BREAK_LOCK_FILE: ""})
    linked = init("refarch", {**base, **cache_environment(base)})
    assert "Using example.com/ns/fake v1.0.0 from the shared cache directory" in linked


def test_the_cache_folder_exists_after_any_init_so_terraform_never_warns_about_it(tmp_path):
    cache = tmp_path / "no" / "cache"
    with init_lock(cache, None) as ok:  # a module without providers takes no lock
        ok[0] = True
    assert cache.is_dir() and stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert not (cache / LOCK_FILE).exists()
