"""Traces (refarch.telemetry) with the OpenTelemetry SDK's in-memory exporter: the span tree
run -> tier -> unit -> attempt -> tool process, its attributes, TRACEPARENT in the tool's
environment; and nothing imported or traced when off."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from refarch import telemetry
from refarch.exec.process import run_process
from refarch.settings import Settings, settings_from_dict
from tests.unit.test_ledger import SPEC, FakeEngine, go
from tests.unit.test_scheduler import make_plan

pytest.importorskip("opentelemetry.sdk", reason="the telemetry extra (opentelemetry-sdk) is not installed")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing = telemetry.start(Settings(), {}, exporter=exporter)
    previous = telemetry.install(tracing)
    yield exporter
    telemetry.install(previous)
    assert tracing is not None
    tracing.shutdown()


def test_a_run_is_a_tree_of_run_tier_unit_attempt_spans_with_the_retry_reason(tmp_path, spans):
    plan = make_plan(SPEC, root=tmp_path)
    report = go(plan, FakeEngine({"dev/vpc": [(1, "Error: net/http: TLS handshake timeout")]}))
    assert report.ok
    found = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in found}
    (run,) = [s for s in found if s.name == "refarch apply"]
    assert run.attributes["refarch.run_id"] == report.run_id and run.parent is None
    tiers = {s.attributes["refarch.tier"]: s for s in found if s.name.startswith("tier ")}
    assert set(tiers) == {1, 2} and all(t.parent.span_id == run.context.span_id for t in tiers.values())
    units = {s.name: s for s in found if "refarch.unit" in s.attributes}
    assert set(units) == set(SPEC)
    vpc = units["dev/vpc"]
    assert by_id[vpc.parent.span_id] is tiers[2]
    assert (vpc.attributes["refarch.account"], vpc.attributes["refarch.result"]) == ("dev", "succeeded")
    attempts = sorted(
        (s for s in found if s.parent and s.parent.span_id == vpc.context.span_id), key=lambda s: s.start_time
    )
    assert [a.name for a in attempts] == ["attempt 1", "attempt 2"]
    assert attempts[0].attributes["refarch.result"] == "exit 1"
    assert attempts[1].attributes["refarch.retry_reason"] == "tls-handshake-timeout"
    assert {s.context.trace_id for s in found} == {run.context.trace_id}
    assert tiers[1].end_time <= tiers[2].start_time  # a tier ends with its last unit


def test_a_tool_process_is_a_span_and_gets_its_traceparent(tmp_path, spans):
    with telemetry.run_span(Settings(), {}, action="plan", run_id="r1"):
        result = run_process(
            [sys.executable, "-c", "import os; print(os.environ['TRACEPARENT'])"],
            cwd=tmp_path,
            env={"PATH": "/usr/bin"},
            guard=False,
        )
    (tool,) = [s for s in spans.get_finished_spans() if "process.command" in s.attributes]
    context = tool.context
    flags = int(context.trace_flags)
    assert result.stdout_tail.strip() == f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"
    assert tool.attributes["process.exit_code"] == 0


def test_off_by_default_nothing_is_imported_or_added(tmp_path):
    assert telemetry.start(Settings(), {}) is None
    code = (
        "import sys; from refarch.exec.process import run_process; "
        "r = run_process(['env'], cwd='.', env={'PATH': '/usr/bin'}, guard=False); "
        "print('TRACEPARENT' in r.stdout_tail, any(m.startswith('opentelemetry') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.split() == ["False", "False"]


def test_the_endpoint_comes_from_refarch_toml_or_the_environment():
    configured = settings_from_dict({"telemetry": {"otlp_endpoint": "http://127.0.0.1:4318"}})
    assert telemetry.endpoint(configured, {}) == "http://127.0.0.1:4318"
    assert telemetry.endpoint(Settings(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}) == (
        "http://127.0.0.1:9"
    )
    assert telemetry.endpoint(Settings(), {}) is None


def test_a_trace_file_holds_one_json_span_per_line(tmp_path):
    path = tmp_path / "trace.jsonl"
    tracing = telemetry.start(Settings(), {}, trace_file=path)
    previous = telemetry.install(tracing)
    try:
        with telemetry.run_span(Settings(), {}, action="apply", run_id="r2"):
            pass
    finally:
        telemetry.install(previous)
        assert tracing is not None
        tracing.shutdown()
    (span,) = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert span["name"] == "refarch apply" and span["attributes"]["refarch.run_id"] == "r2"
