"""Where refarch's data folders are: beside the package in a checkout, inside it in a wheel."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# pyproject.toml's [tool.hatch.build.targets.wheel.force-include] puts them here in a wheel.
INSTALLED_DIR = PACKAGE_DIR / "_data"
DATA_FOLDERS = ("live-templates", "modules", "modules-demo", "packer", "schemas")


def data_dir(name: str) -> Path:
    """The folder `name` (one of DATA_FOLDERS): `refarch/_data/<name>` in an installed wheel,
    else `<checkout>/<name>` (a source tree or an editable install)."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"not a refarch data folder: {name!r}")
    installed = INSTALLED_DIR / name
    return installed if installed.is_dir() else PACKAGE_DIR.parent / name


def schema_path(name: str) -> Path:
    """The JSON Schema of the contract `name` (graph, plan, report, ledger-event,
    bootstrap-record, preflight, validate, saved-plan): `schemas/<name>.schema.json`."""
    return data_dir("schemas") / f"{name}.schema.json"
