"""The machine's provider cache: which inits may write it, and the lock that keeps them apart."""

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from refarch.engines.provider_cache import LOCK_FILE, WARM_DIR, cache_dir, init_lock, requirements
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
        with init_lock(cache, "k1", upgrade=True):
            entered.set()

    worker = threading.Thread(target=upgrade)
    worker.start()
    time.sleep(0.2)
    assert not entered.is_set()  # -upgrade may install newer providers: it waits
    os.close(cache_fd)
    worker.join(5)
    assert entered.is_set()
