"""Files refarch generates from configuration stay where they belong: never in .git or
.refarch, never outside the stack's folder, never read from devices or pipes, bounded in size."""

import os
import stat
import subprocess

import pytest
from click.testing import CliRunner

from refarch.cli import cli
from refarch.config import stacks
from refarch.config.stacks import STACK_DIR, generate_stacks
from refarch.errors import ConfigError
from tests.helpers import write_tree

UNIT = 'inputs = {\n  name = "x"\n}\n'
HOOK = "#!/bin/sh\necho planted\n"


@pytest.fixture
def repo(tmp_path):
    """A git repo whose live root is its top folder, with a catalog unit holding a 'hook'."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write_tree(tmp_path, {"catalog/hook/terragrunt.hcl": UNIT, "catalog/hook/pre-commit": HOOK})
    (tmp_path / "catalog/hook/pre-commit").chmod(0o755)
    return tmp_path


def stack(path, *, beside=True, source="catalog/hook"):
    return f"""
        unit "hook" {{
          source                  = "{source}"
          path                    = "{path}"
          no_dot_terragrunt_stack = {"true" if beside else "false"}
        }}
    """


def git_hooks(repo):
    return sorted(p.name for p in (repo / ".git" / "hooks").iterdir() if not p.name.endswith(".sample"))


@pytest.mark.parametrize("path", [".git/hooks", ".GIT/hooks", "x/../.git/hooks", ".refarch", "a/.git"])
@pytest.mark.parametrize("beside", [True, False])
def test_a_stack_path_into_git_or_refarch_is_refused(repo, path, beside):
    write_tree(repo, {"terragrunt.stack.hcl": stack(path, beside=beside)})
    with pytest.raises(ConfigError) as caught:
        generate_stacks(repo)
    assert "refarch never generates there" in str(caught.value)
    assert caught.value.path == "terragrunt.stack.hcl" and caught.value.line == 1
    assert git_hooks(repo) == [] and not (repo / ".refarch").exists()


def test_a_read_only_graph_plants_no_git_hook(repo):
    write_tree(repo, {"terragrunt.stack.hcl": stack(".git/hooks")})
    result = CliRunner().invoke(cli, ["graph", str(repo)])
    assert result.exit_code == 2 and "terragrunt.stack.hcl:1" in result.stderr
    assert git_hooks(repo) == []


def test_a_link_beside_the_stack_into_git_is_not_followed(repo):
    (repo / "hooks").symlink_to(repo / ".git" / "hooks")
    write_tree(repo, {"terragrunt.stack.hcl": stack("hooks")})
    with pytest.raises(ConfigError, match=r"into a \.git or \.refarch folder"):
        generate_stacks(repo)
    assert git_hooks(repo) == []


@pytest.mark.parametrize("special", ["device", "fifo"])
def test_a_source_holding_a_device_or_a_pipe_is_refused_without_reading_it(repo, special):
    target = repo / "catalog/hook/data"
    if special == "device":
        target.symlink_to("/dev/zero")  # read, it never ends
    else:
        os.mkfifo(target)  # read, it blocks for ever
    write_tree(repo, {"live/terragrunt.stack.hcl": stack("app", beside=False, source="../catalog/hook")})
    with pytest.raises(ConfigError, match="holds data, a device, pipe or socket"):
        generate_stacks(repo / "live")
    assert not (repo / "live" / STACK_DIR).exists()


def test_a_link_to_a_folder_above_it_is_refused_not_copied_for_ever(repo):
    (repo / "catalog/hook/loop").symlink_to("..")
    write_tree(repo, {"live/terragrunt.stack.hcl": stack("app", beside=False, source="../catalog/hook")})
    with pytest.raises(ConfigError, match="a link to a folder that contains it"):
        generate_stacks(repo / "live")


def test_links_to_regular_files_are_copied_as_files_with_their_modes(repo):
    (repo / "catalog/shared.tf").write_text("# shared\n")
    (repo / "catalog/hook/shared.tf").symlink_to("../shared.tf")
    write_tree(repo, {"live/terragrunt.stack.hcl": stack("app", beside=False, source="../catalog/hook")})
    generate_stacks(repo / "live")
    out = repo / "live" / STACK_DIR / "app"
    assert not (out / "shared.tf").is_symlink() and (out / "shared.tf").read_text() == "# shared\n"
    assert stat.S_IMODE((out / "pre-commit").stat().st_mode) == 0o755


def test_generated_bytes_are_bounded(repo, monkeypatch):
    monkeypatch.setattr(stacks, "MAX_GENERATED_BYTES", 1000)
    (repo / "catalog/hook/big.bin").write_bytes(b"x" * 2000)
    write_tree(repo, {"live/terragrunt.stack.hcl": stack("app", beside=False, source="../catalog/hook")})
    with pytest.raises(ConfigError, match="more than 0 MiB"):
        generate_stacks(repo / "live")
    assert not (repo / "live" / STACK_DIR).exists()


# -- generate blocks (the terraform engine writes them into the unit's working folder) --------
def test_a_generate_block_stays_in_the_working_folder_and_is_bounded(tmp_path, monkeypatch):
    from refarch.engines import workdir
    from refarch.models import Generate
    from tests.unit.test_workdir import make_repo, prepare, unit

    make_repo(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "modules/vpc/hooks").symlink_to(outside)  # the module copy keeps the link
    through = Generate(name="through", path="hooks/pre-commit", contents=HOOK)
    with pytest.raises(ConfigError, match="outside the module"):
        prepare(tmp_path, unit(generate=(through,)))
    assert list(outside.iterdir()) == []
    monkeypatch.setattr(workdir, "MAX_GENERATED_FILE_BYTES", 100)
    big = Generate(name="big", path="big.tf", contents="#" * 200)
    with pytest.raises(ConfigError, match='generate "big" would write 200 bytes'):
        prepare(tmp_path, unit(generate=(big,)))
