"""Reads of configuration are bounded: read_terragrunt_config or include of a FIFO, a device
or an oversized file is a clear error naming the file and line, never a hang or an OOM."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from refarch.cli import cli
from refarch.files import MAX_READ_BYTES
from tests.helpers import write_tree

READS = 'locals {\n  common = read_terragrunt_config("../common.hcl")\n}\n'
INCLUDES = 'include "common" {\n  path = "../common.hcl"\n}\n'


def plan_in_thread(root: Path) -> Result:
    """`refarch plan` in a thread, so that a hang fails the test instead of stalling it."""
    results: list[Result] = []
    worker = threading.Thread(target=lambda: results.append(CliRunner().invoke(cli, ["plan", str(root)])))
    worker.daemon = True
    worker.start()
    worker.join(timeout=120)  # a safety net for a hang, not a timed assertion
    assert results, "refarch plan hung"
    assert results[0].exception is None or isinstance(results[0].exception, SystemExit), results[0].exc_info
    return results[0]


def fifo(path: Path) -> None:
    os.mkfifo(path)


def device(path: Path) -> None:
    path.symlink_to("/dev/zero")


def oversized(path: Path) -> None:
    with path.open("wb") as handle:
        handle.truncate(MAX_READ_BYTES + 1)  # sparse: no disk, no memory


@pytest.mark.parametrize("make", [fifo, device, oversized], ids=["fifo", "device", "oversized"])
@pytest.mark.parametrize("unit", [READS, INCLUDES], ids=["read_terragrunt_config", "include"])
def test_an_unreadable_config_file_is_a_clear_error(tmp_path: Path, make, unit: str) -> None:  # type: ignore[no-untyped-def]
    root = write_tree(tmp_path / "live", {"root.hcl": "", "app/terragrunt.hcl": unit})
    make(root / "common.hcl")
    result = plan_in_thread(root)
    assert result.exit_code == 2
    line = 1 if unit == INCLUDES else 2  # the include block, the read_terragrunt_config call
    assert f"app/terragrunt.hcl:{line}: " in result.output and "common.hcl: is " in result.output
    assert any(word in result.output for word in ("FIFO", "device", "more than the"))


def test_a_unit_file_that_is_a_fifo_is_a_clear_error(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "live", {"root.hcl": "", "ok/terragrunt.hcl": ""})
    (root / "app").mkdir()
    fifo(root / "app" / "terragrunt.hcl")
    result = plan_in_thread(root)
    assert result.exit_code == 2 and "app/terragrunt.hcl: is a FIFO" in result.output


@pytest.mark.parametrize("make", [fifo, device, oversized], ids=["fifo", "device", "oversized"])
@pytest.mark.parametrize(
    "call", ['file("../data.txt")', 'filebase64("../data.txt")', 'templatefile("../data.txt", {})']
)
def test_a_file_function_on_an_unreadable_file_is_a_clear_error(tmp_path: Path, make, call: str) -> None:  # type: ignore[no-untyped-def]
    unit = f"locals {{\n  data = {call}\n}}\n"
    root = write_tree(tmp_path / "live", {"root.hcl": "", "app/terragrunt.hcl": unit})
    make(root / "data.txt")
    result = plan_in_thread(root)
    assert result.exit_code == 2, result.output
    function = call.split("(", maxsplit=1)[0]
    assert f"app/terragrunt.hcl:2: {function}(): cannot read ../data.txt: is " in result.output
    assert any(word in result.output for word in ("FIFO", "device", "more than the"))
