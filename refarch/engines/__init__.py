"""Engines: argv and environment per tool (terragrunt, terraform), one attempt at a time."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import TYPE_CHECKING

from refarch.engines.base import ACTIONS, Engine, EngineResult, UnitJob
from refarch.errors import UsageError

if TYPE_CHECKING:
    from refarch.settings import Settings

ENGINES = ("terragrunt", "terraform")

__all__ = ["ACTIONS", "ENGINES", "Engine", "EngineResult", "UnitJob", "default_engine_name", "make_engine"]


def default_engine_name(env: Mapping[str, str]) -> str:
    """terragrunt when it is on PATH, else terraform (which refarch drives itself)."""
    return "terragrunt" if shutil.which("terragrunt", path=env.get("PATH")) else "terraform"


def make_engine(name: str, settings: Settings | None = None) -> Engine:
    """The engine called `name` ("terragrunt" | "terraform"), configured from `[engine]`."""
    if name == "terragrunt":
        from refarch.engines.terragrunt import TerragruntEngine  # noqa: PLC0415

        return TerragruntEngine(settings)
    if name == "terraform":
        from refarch.engines.terraform import TerraformEngine  # noqa: PLC0415 - heavy, optional

        return TerraformEngine(settings)
    raise UsageError(f"unknown engine {name!r}", hint=f"use one of {', '.join(ENGINES)}")
