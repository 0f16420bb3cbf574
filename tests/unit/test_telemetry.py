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


def test_without_opentelemetry_the_environment_alone_only_warns(monkeypatch):
    from refarch.errors import RefarchWarning, UsageError

    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.resources", None)  # as if not installed
    with pytest.warns(RefarchWarning, match="this run is not traced"):
        assert telemetry.start(Settings(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}) is None
    configured = settings_from_dict({"telemetry": {"otlp_endpoint": "http://127.0.0.1:9"}})
    with pytest.raises(UsageError, match="OpenTelemetry is not installed"):
        telemetry.start(configured, {})


def test_spans_reach_an_otlp_collector_given_in_refarch_toml(tmp_path):
    """A run with `[telemetry] otlp_endpoint` sends its spans over OTLP/HTTP: to a collector
    in this process (an HTTP server on 127.0.0.1 that decodes the protobuf requests)."""
    import threading
    from dataclasses import replace
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the OTLP exporter is not installed")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[tuple[str, str]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    received.extend((self.path, span.name) for span in scope.spans)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        plan = make_plan(SPEC, root=tmp_path)
        settings = settings_from_dict({"telemetry": {"otlp_endpoint": url}})
        plan = replace(plan, repo=replace(plan.repo, settings=settings))
        assert go(plan, FakeEngine()).ok  # the run's own Tracing: flushed and shut down at its end
    finally:
        server.shutdown()
    names = {name for path, name in received if path == "/v1/traces"}
    assert {"refarch apply", "tier 1", "tier 2", "dev/vpc", "attempt 1"} <= names
