"""Failures read whole: every line of a multi-line error keeps its `[unit]` prefix, and a git
source error keeps all of git's message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from refarch.cli import output
from refarch.cli.run_cmd import RunView
from refarch.engines.workdir import GitCloner, ModuleSource
from refarch.errors import ModuleSourceError
from refarch.events import UnitOutput

TERRAFORM_ERROR = """\u2577
\u2502 Error: Failed to query available provider packages
\u2502
\u2502 Could not retrieve the list of available versions for provider hashicorp/aws
\u2575"""


def test_every_line_of_a_multi_line_error_keeps_the_unit_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    view = RunView("apply", 1, output.Mode(plain=True))
    view.on_event(UnitOutput("dev/us-east-1/vpc", "stderr", TERRAFORM_ERROR))
    view.on_event(UnitOutput("dev/us-east-1/vpc", "stdout", ""))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(TERRAFORM_ERROR.splitlines()) + 1
    assert all(line.startswith("[dev/us-east-1/vpc] ") or line == "[dev/us-east-1/vpc]" for line in lines)
    assert lines[1] == "[dev/us-east-1/vpc] \u2502 Error: Failed to query available provider packages"


def test_a_git_source_error_shows_all_of_gits_message(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "modules.git"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    with pytest.raises(ModuleSourceError) as caught:
        GitCloner().fetch(ModuleSource("git", f"file://{missing}", "vpc", "v1"), tmp_path / "src", env)
    detail = caught.value.detail
    # git's first line says what is wrong; the last one alone ("and the repository exists.")
    # is what the message used to keep.
    assert "does not appear to be a git repository" in detail
    assert len(detail.splitlines()) > 1 and str(caught.value).endswith(
        detail + "\n  -> " + str(caught.value.hint)
    )
