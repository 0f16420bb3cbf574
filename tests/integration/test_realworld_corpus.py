"""Loads every real-world Terragrunt tree of tests/fixtures/realworld and checks what is known.

Each folder there is a small live repo copied from public Terragrunt fixtures and example repos
(tests/fixtures/realworld/SOURCES.md says where each came from). For every one, `load_repo` and
`plan` must either succeed or raise a RefarchError that names a file: never a Python traceback.
An optional `_expect/<case>.toml` states facts the load must produce (units, edges, inputs,
sources, remote state, generate blocks, plan order) or the error it must raise; keys:

- units, dependencies, source, backend, iam_role, account, region, generate: exact per unit
- inputs, remote_state_config: per unit, the listed keys only ("{root}" = the case folder)
- generate_contents: per unit, {block name: a substring of its contents}
- errors: per unit, its errors blocks as "kind.name:max_attempts" (retry) or "kind.name" (ignore)
- plan / plan_destroy: {groups, skipped} of plan(repo) for apply / destroy
- error (+ error_file): a ConfigError whose message contains these words is required
- unsupported + unknown_inputs: a function refarch will not run while reading config; the load
  either refuses naming it, or leaves the listed inputs unknown (never a made-up value)
- allow_error: a ConfigError naming a file is an accepted outcome too (the facts apply on success)
- env: environment variables for the load
- xfail: a known gap of the evaluator; the case is expected to fail until it is fixed
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from refarch.config import load_repo
from refarch.config.values import UNKNOWN_PREFIX
from refarch.errors import ConfigError, DependencyCycle, RefarchError
from refarch.models import Repo
from refarch.planner import plan

CORPUS = Path(__file__).parent.parent / "fixtures" / "realworld"
EXPECT = CORPUS / "_expect"
# Our own fixtures, one per Terragrunt behaviour refarch follows (same _expect format).
SEMANTICS = Path(__file__).parent.parent / "fixtures" / "terragrunt_semantics"


def _cases() -> list[Any]:
    params = []
    for corpus in (CORPUS, SEMANTICS):
        for folder in sorted(p for p in corpus.iterdir() if p.is_dir() and not p.name.startswith("_")):
            expect = _expectations(corpus, folder.name)
            marks = []
            if "xfail" in expect:
                marks.append(pytest.mark.xfail(strict=True, reason=expect["xfail"]))
            params.append(pytest.param(folder, expect, id=f"{corpus.name}/{folder.name}", marks=marks))
    return params


def _expectations(corpus: Path, name: str) -> dict[str, Any]:
    file = corpus / "_expect" / f"{name}.toml"
    return tomllib.loads(file.read_text()) if file.exists() else {}


def _load(case: Path, expect: dict[str, Any]) -> Repo:
    # No cache: the corpus folders stay untouched. A fixed env: results do not depend on the shell.
    return load_repo(case, env=dict(expect.get("env", {})), cache=False)


def _names_a_file(error: RefarchError) -> bool:
    if isinstance(error, DependencyCycle):
        return True  # names the units of the cycle instead
    path = getattr(error, "path", None)
    return bool(path) or ".hcl" in str(error) or "terragrunt" in str(error)


@pytest.mark.parametrize(("case", "expect"), _cases())
def test_realworld_case(case: Path, expect: dict[str, Any]) -> None:
    if "error" in expect:
        _check_error(case, expect)
        return
    try:
        repo = _load(case, expect)
        plans = {action: plan(repo, action) for action in ("apply", "destroy")}
    except RefarchError as error:
        assert _names_a_file(error), f"error names no file: {error}"
        function = expect.get("unsupported")
        if function is not None:
            assert isinstance(error, ConfigError) and function in str(error), str(error)
            return
        if expect.get("allow_error"):
            return
        raise
    _check_unknowns(repo, expect)
    _check_facts(repo, plans, case, expect)


def _check_error(case: Path, expect: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        repo = _load(case, expect)
        plan(repo)
    message = str(caught.value)
    assert expect["error"] in message, message
    if "error_file" in expect:
        assert expect["error_file"] in message or (caught.value.path or "").endswith(expect["error_file"]), (
            message
        )


def _check_unknowns(repo: Repo, expect: dict[str, Any]) -> None:
    function = expect.get("unsupported")
    for unit, keys in expect.get("unknown_inputs", {}).items():
        for key in keys:
            value = repo.unit(unit).inputs[key]
            assert isinstance(value, str) and value.startswith(UNKNOWN_PREFIX), (unit, key, value)
            if function is not None:
                assert function in value, (unit, key, value)


def _check_facts(repo: Repo, plans: dict[str, Any], case: Path, expect: dict[str, Any]) -> None:
    root = str(case.resolve())
    if "units" in expect:
        assert sorted(repo.units) == sorted(expect["units"])
    for unit, deps in expect.get("dependencies", {}).items():
        assert sorted(repo.unit(unit).dependencies) == sorted(deps), unit
    for unit, source in expect.get("source", {}).items():
        assert repo.unit(unit).source == source, unit
    for unit, role in expect.get("iam_role", {}).items():
        assert repo.unit(unit).iam_role == role, unit
    for unit, account in expect.get("account", {}).items():
        assert repo.unit(unit).account == account, unit
    for unit, region in expect.get("region", {}).items():
        assert repo.unit(unit).region == region, unit
    for unit, backend in expect.get("backend", {}).items():
        remote = repo.unit(unit).remote_state
        assert remote is not None and remote.backend == backend, unit
    for unit, config in expect.get("remote_state_config", {}).items():
        remote = repo.unit(unit).remote_state
        assert remote is not None, unit
        for key, value in config.items():
            assert remote.config.get(key) == _with_root(value, root), (unit, key)
    for unit, inputs in expect.get("inputs", {}).items():
        actual = repo.unit(unit).inputs
        for key, value in inputs.items():
            assert key in actual, (unit, key, sorted(actual))
            assert actual[key] == _with_root(value, root), (unit, key)
    for unit, names in expect.get("generate", {}).items():
        assert sorted(g.name for g in repo.unit(unit).generate) == sorted(names), unit
    for unit, contents in expect.get("generate_contents", {}).items():
        blocks = {g.name: g.contents for g in repo.unit(unit).generate}
        for name, fragment in contents.items():
            assert fragment in blocks[name], (unit, name)
    for unit, blocks in expect.get("errors", {}).items():
        found = [
            f"{e.kind}.{e.name}" + (f":{e.max_attempts}" if e.kind == "retry" else "")
            for e in repo.unit(unit).errors
        ]
        assert found == blocks, unit
    for key, action in (("plan", "apply"), ("plan_destroy", "destroy")):
        wanted = expect.get(key, {})
        if "groups" in wanted:
            assert [list(g) for g in plans[action].groups] == wanted["groups"], action
        if "skipped" in wanted:
            assert sorted(plans[action].skipped) == sorted(wanted["skipped"]), action


def _with_root(value: Any, root: str) -> Any:
    if isinstance(value, str):
        return value.replace("{root}", root)
    if isinstance(value, list):
        return [_with_root(v, root) for v in value]
    if isinstance(value, dict):
        return {k: _with_root(v, root) for k, v in value.items()}
    return value


def test_every_case_is_listed_in_sources() -> None:
    sources = (CORPUS / "SOURCES.md").read_text()
    cases = [p.name for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("_")]
    missing = [name for name in cases if f"`{name}`" not in sources]
    assert not missing, f"add these cases to SOURCES.md: {missing}"


def test_every_expectation_has_a_case() -> None:
    for corpus in (CORPUS, SEMANTICS):
        orphans = [f.stem for f in (corpus / "_expect").glob("*.toml") if not (corpus / f.stem).is_dir()]
        assert not orphans
