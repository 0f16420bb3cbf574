"""Discovery gives the same units as before its evaluation was memoised: every fixture repo
(tests/fixtures: live, realworld, stacks, terragrunt_semantics) and a synthetic one (the
discovery bench's layout) is loaded and compared, unit by unit and field by field (cache key
digest included), with tests/fixtures/discovery_golden.json, which was written by the
straightforward evaluator before the change. A load that fails must fail with the same error.

REFARCH_WRITE_GOLDEN=1 rewrites the golden file (only when a change of results is intended).
Cost: about 3 s for both tests (12 s on this 2-core machine under a load average of 12).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tomllib
import warnings
from pathlib import Path
from typing import Any

import pytest

from refarch.config import discover, load_repo
from refarch.config.cache import unit_to_dict
from refarch.config.stacks import generate_stacks
from refarch.errors import RefarchError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDEN = FIXTURES / "discovery_golden.json"
BENCH = Path(__file__).resolve().parents[2] / "bench" / "discover.py"
SYNTHETIC_UNITS = 150


def _cases() -> dict[str, tuple[Path, dict[str, str]]]:
    cases = {"live": (FIXTURES / "live", {})}
    for corpus in ("realworld", "terragrunt_semantics"):
        for folder in sorted(p for p in (FIXTURES / corpus).iterdir() if p.is_dir() and p.name[0] != "_"):
            expect = folder.parent / "_expect" / f"{folder.name}.toml"
            env = tomllib.loads(expect.read_text()).get("env", {}) if expect.exists() else {}
            cases[f"{corpus}/{folder.name}"] = (folder, dict(env))
    return cases


def _synthetic(root: Path) -> Path:
    spec = importlib.util.spec_from_file_location("bench_discover", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(root, SYNTHETIC_UNITS)
    return root


def _stacks(tmp: Path) -> Path:
    """The stacks example, copied and generated (stacks are generated before a load)."""
    shutil.copytree(FIXTURES / "stacks" / "example", tmp)
    generate_stacks(tmp / "live", env={})
    return tmp / "live"


def _without_digests(outcome: Any) -> Any:
    """The generated values files hold the copy's absolute path: their digests differ per copy."""
    for unit in outcome.get("units", {}).values():
        unit["digest"] = None
    return outcome


def _outcome(folder: Path, env: dict[str, str], jobs: int | None = 1, *, cache: bool = False) -> Any:
    root = str(folder.resolve())
    try:
        repo = load_repo(folder, env=env, cache=cache, jobs=jobs)
    except RefarchError as error:
        result: Any = {"error": type(error).__name__, "message": str(error)}
    else:
        result = {
            "units": {path: unit_to_dict(u) | {"external": u.external} for path, u in repo.units.items()},
            "accounts": [repr(account) for account in repo.accounts],
            "excludes": list(repo.excludes),
            "features": dict(repo.features),
        }
    # Folder-independent: the case's own path written as {root}.
    text = json.dumps(result, sort_keys=True, default=repr)
    checkout = str(Path(__file__).resolve().parents[2])  # a file searched for above the fixtures
    text = text.replace(root, "{root}").replace(str(Path(root).parent), "{parent}")
    return json.loads(text.replace(checkout, "{checkout}"))


def _all_outcomes(tmp: Path) -> dict[str, Any]:
    outcomes = {name: _outcome(folder, env) for name, (folder, env) in _cases().items()}
    outcomes["stacks/example"] = _without_digests(_outcome(_stacks(tmp / "stacks"), {}))
    outcomes["synthetic"] = _outcome(_synthetic(tmp / "synthetic"), {})
    return outcomes


def test_discovery_matches_the_golden_file(tmp_path: Path) -> None:
    outcomes = _all_outcomes(tmp_path)
    if os.environ.get("REFARCH_WRITE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(outcomes, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(outcomes) == sorted(golden)
    for name, outcome in outcomes.items():
        assert outcome == golden[name], name


def test_parallel_discovery_matches_the_golden_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker processes give the same units as one process (a small threshold forces them)."""
    monkeypatch.setattr(discover, "PARALLEL_THRESHOLD", 10)
    root = _synthetic(tmp_path / "synthetic")
    golden = json.loads(GOLDEN.read_text())["synthetic"]
    shutil.rmtree(root / ".refarch", ignore_errors=True)
    assert _outcome(root, {}, jobs=2) == golden
    # The units the workers sent are stored in the cache as they are, and read back alike.
    assert _outcome(root, {}, jobs=2, cache=True) == golden
    assert (root / ".refarch" / "cache").is_dir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a malformed entry would be discarded with a warning
        monkeypatch.setattr(discover, "_evaluate_new_unit", None)  # and evaluated again
        assert _outcome(root, {}, jobs=2, cache=True) == golden
    monkeypatch.undo()
    # A unit that fails in a worker fails with the error one process gives.
    broken = root / "dev" / "us-east-1" / "broken" / "terragrunt.hcl"
    broken.parent.mkdir()
    broken.write_text('include "root" {\n  path = find_in_parent_folders("nowhere.hcl")\n}\n')
    failed = _outcome(root, {}, jobs=2)
    assert "error" in failed and failed == _outcome(root, {}, jobs=1)
