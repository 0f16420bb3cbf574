"""The JSON contracts (README: The JSON contracts): every schema in schemas/ is a valid draft
2020-12 schema carrying the version the code writes, and real outputs validate against them:
graph and plan of tests/fixtures/live, the report and ledger of runs with a fake engine, and
`refarch validate --json`. (The bootstrap record and `refarch preflight --json` are checked
against the moto server in tests/integration: test_bootstrap.py, test_preflight.py.)"""

from __future__ import annotations

import ast
import copy
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator, ValidationError

from refarch import graph, models, resources, validate
from refarch.cli import cli
from refarch.jobs import drift, preflight
from refarch.provision import record
from refarch.runner import ledger, saved_plans
from refarch.runner.ledger import find_ledger, read_events
from refarch.runner.report import write_report
from tests.helpers import write_tree
from tests.unit.test_broken_records import REPO as VALIDATE_REPO
from tests.unit.test_ledger import SPEC, FakeEngine, go
from tests.unit.test_scheduler import make_plan

PACKAGE = Path(__file__).resolve().parents[2] / "refarch"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "live"
# Each contract and the version its writer puts in `schema_version`.
VERSIONS = {
    "graph": graph.GRAPH_SCHEMA_VERSION,
    "plan": models.PLAN_SCHEMA_VERSION,
    "report": models.REPORT_SCHEMA_VERSION,
    "ledger-event": ledger.LEDGER_SCHEMA_VERSION,
    "bootstrap-record": record.VERSION,
    "preflight": preflight.PREFLIGHT_SCHEMA_VERSION,
    "validate": validate.VALIDATE_SCHEMA_VERSION,
    "saved-plan": saved_plans.SCHEMA_VERSION,
    "drift": drift.DRIFT_SCHEMA_VERSION,
}


def check(name: str, document: object) -> None:
    """Raise ValidationError unless `document` follows schemas/<name>.schema.json."""
    schema = json.loads(resources.schema_path(name).read_text(encoding="utf-8"))
    Draft202012Validator(schema).validate(document)


@pytest.fixture
def live(tmp_path: Path) -> Path:
    root = tmp_path / "live"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns(".refarch"))
    return root


def test_every_schema_is_valid_and_has_the_version_the_code_writes() -> None:
    folder = resources.data_dir("schemas")
    assert sorted(p.name for p in folder.glob("*.schema.json")) == sorted(
        f"{n}.schema.json" for n in VERSIONS
    )
    for name, version in VERSIONS.items():
        schema = json.loads(resources.schema_path(name).read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        assert schema["properties"]["schema_version"]["const"] == version, name
        assert "schema_version" in schema["required"], name


def test_graph_json_of_the_fixture_follows_its_schema(live: Path) -> None:
    result = CliRunner().invoke(cli, ["graph", str(live), "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema_version"] == graph.GRAPH_SCHEMA_VERSION and len(document["units"]) > 10
    check("graph", document)
    assert any(u["remote_state"] for u in document["units"]) and any(
        u["dependencies"] for u in document["units"]
    )


@pytest.mark.parametrize("action", ["apply", "destroy"])
def test_plan_json_of_the_fixture_follows_its_schema(live: Path, action: str) -> None:
    result = CliRunner().invoke(cli, ["plan", str(live), "--json", "--action", action])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["action"] == action and document["groups"]
    check("plan", document)


def test_the_schemas_catch_a_renamed_a_dropped_or_a_wrongly_typed_field(live: Path) -> None:
    document = json.loads(CliRunner().invoke(cli, ["graph", str(live)]).stdout)
    renamed = copy.deepcopy(document)
    renamed["units"][0]["acount"] = renamed["units"][0].pop("account")
    dropped = {k: v for k, v in document.items() if k != "schema_version"}
    retyped = copy.deepcopy(document)
    retyped["units"][0]["tier"] = "1"
    newer = {**document, "schema_version": graph.GRAPH_SCHEMA_VERSION + 1}
    for broken in (renamed, dropped, retyped, newer):
        with pytest.raises(ValidationError):
            check("graph", broken)


def test_a_run_report_and_every_ledger_line_follow_their_schemas(tmp_path: Path) -> None:
    plan = make_plan(SPEC, root=tmp_path)
    engine = FakeEngine(
        {"dev/vpc": [(1, "Error: net/http: TLS handshake timeout")], "dev/db": [(1, "Error: denied")]}
    )
    first = go(plan, engine)
    assert first.exit_code == 1
    resumed = go(plan, FakeEngine(), resume="last")  # done_before, resumed_from
    outputs = go(make_plan(SPEC, action="output", root=tmp_path), FakeEngine(), history=False)
    kinds = set()
    for report in (first, resumed, outputs):
        document = json.loads(write_report(report, tmp_path / f"{report.run_id}.json").read_text())
        check("report", document)
        for event in read_events(find_ledger(tmp_path, report.run_id)):
            check("ledger-event", event)
            kinds.add(event["event"])
    assert {"run_start", "unit_start", "attempt", "retry", "unit_finish", "run_finish"} <= kinds
    assert resumed.resumed_from == first.run_id


def _strings(node: ast.expr, assigned: dict[str, list[ast.expr]]) -> list[str]:
    """The event names an argument can be: a string, `"a" if c else "b"`, or a variable
    assigned such in the same function."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body, assigned) + _strings(node.orelse, assigned)
    if isinstance(node, ast.Name) and node.id in assigned:
        return [name for value in assigned[node.id] for name in _strings(value, {})]
    raise AssertionError(f"cannot tell which ledger event line {node.lineno} writes")


def _ledger_calls() -> dict[str, set[str]]:
    """Every `ledger.write("event", field=...)` in refarch: event name -> the fields named."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assigned: dict[str, list[ast.expr]] = {}
            for node in ast.walk(function):
                target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)  # type: ignore[union-attr]
            for node in ast.walk(function):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "write"
                    and isinstance(node.func.value, ast.Attribute | ast.Name)
                    and getattr(node.func.value, "attr", getattr(node.func.value, "id", "")) == "ledger"
                ):
                    continue
                fields = {k.arg for k in node.keywords if k.arg is not None}
                for name in _strings(node.args[0], assigned):
                    found.setdefault(name, set()).update(fields)
    return found


def test_the_ledger_schema_knows_every_event_the_code_writes_and_its_fields() -> None:
    schema = json.loads(resources.schema_path("ledger-event").read_text(encoding="utf-8"))
    calls = _ledger_calls()
    assert {"run_start", "unit_start", "unit_finish", "lock_released", "state_pushed"} <= set(calls)
    events = set(schema["properties"]["event"]["enum"])
    assert set(calls) <= events, f"ledger events without a schema: {sorted(set(calls) - events)}"
    assert events == set(schema["$defs"])
    for name, fields in calls.items():
        known = set(schema["$defs"][name]["properties"])
        assert fields <= known, f"ledger event {name}: {sorted(fields - known)} not in the schema"


def test_validate_json_follows_its_schema(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "live", VALIDATE_REPO)
    (repo / "dev/us-east-1/app/terragrunt.hcl").write_text(
        'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}\n'
        'terraform {\n  source = "../../../modules/app"\n}\n'
        'inputs = {\n  nmae = "app"\n}\n'
    )
    result = CliRunner().invoke(cli, ["validate", str(repo), "--json"])
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["mismatches"] and document["schema_version"] == validate.VALIDATE_SCHEMA_VERSION
    check("validate", document)
