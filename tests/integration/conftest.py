"""Fixtures of the integration tests that several modules share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def aws_plugin_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One provider cache for the tests that install the real AWS provider (a 700 MB binary,
    copied from the mirror once per session instead of once per test)."""
    return tmp_path_factory.mktemp("plugins")
