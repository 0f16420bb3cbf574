"""OpenTelemetry traces of runs: run -> tier -> unit -> attempt -> tool process.

Off by default, and then free: nothing here imports OpenTelemetry, and every hook is a check
of one module variable. On when `[telemetry] otlp_endpoint` or OTEL_EXPORTER_OTLP_ENDPOINT is
set (spans sent over OTLP/HTTP; the `telemetry` extra installs opentelemetry-sdk and the
exporter), or when a caller installs a Tracing of its own (`refarch demo --trace FILE`; the
tests' in-memory exporter). Each tool process gets TRACEPARENT (W3C trace context) in its
environment, so a tool that traces (Terragrunt's OpenTelemetry support) joins the trace.

Attributes: refarch.action, refarch.run_id, refarch.tier, refarch.account, refarch.unit,
refarch.attempt, refarch.retry_reason, refarch.result, process.command, process.exit_code.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from refarch.errors import RefarchWarning, UsageError
from refarch.settings import Settings

ENV_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
Spawn = TypeVar("Spawn", bound=Callable[..., Any])
_ACTIVE: Tracing | None = None  # the installed tracing; None: off
_LOCK = threading.Lock()

__all__ = ["Tracing", "attempt_span", "install", "run_span", "set_result", "start", "tool_span", "unit_span"]


@dataclass
class Tracing:
    """An OpenTelemetry tracer provider and tracer, and the open run's tier spans."""

    provider: Any
    tracer: Any
    tiers: dict[int, Any] = field(default_factory=dict)
    tier_ends: dict[int, int] = field(default_factory=dict)  # when each tier's last unit ended (ns)
    run: Any = None
    owned: bool = True  # shut down when its run ends (a caller's own: kept for its next run)
    files: list[Any] = field(default_factory=list)  # trace files, closed at shutdown

    def shutdown(self) -> None:
        self.provider.force_flush()
        self.provider.shutdown()
        for handle in self.files:
            handle.close()


def endpoint(settings: Settings, env: Mapping[str, str]) -> str | None:
    """Where spans go: `[telemetry] otlp_endpoint`, else OTEL_EXPORTER_OTLP_ENDPOINT; None: off."""
    return settings.telemetry.otlp_endpoint or env.get(ENV_ENDPOINT) or None


def start(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    exporter: Any = None,
    trace_file: Path | None = None,
) -> Tracing | None:
    """A Tracing for `settings` (None when nothing asks for one): OTLP/HTTP to the endpoint,
    and/or spans to `exporter` (any SpanExporter) or as JSON lines to `trace_file`."""
    env = os.environ if env is None else env
    url = endpoint(settings, env)
    if url is None and exporter is None and trace_file is None:
        return None
    try:  # only here: when off, OpenTelemetry is never imported
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError:
        if settings.telemetry.otlp_endpoint is None and exporter is None and trace_file is None:
            warnings.warn(  # only the environment asks (set for other tools, perhaps): run untraced
                f"{ENV_ENDPOINT} is set but OpenTelemetry is not installed: this run is not traced "
                "(pip install 'refarch[telemetry]')",
                RefarchWarning,
                stacklevel=2,
            )
            return None
        raise UsageError(
            "traces are asked for ([telemetry] otlp_endpoint or --trace) but OpenTelemetry is not installed",
            hint="pip install 'refarch[telemetry]', or remove [telemetry] otlp_endpoint",
        ) from None
    provider = TracerProvider(resource=Resource.create({"service.name": settings.telemetry.service_name}))
    if url is not None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )
        except ImportError:
            raise UsageError(
                "the OTLP exporter is not installed", hint="pip install 'refarch[telemetry]'"
            ) from None
        traces = url if url.rstrip("/").endswith("/v1/traces") else url.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces)))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    files = []
    if trace_file is not None:
        handle = Path(trace_file).open("w", encoding="utf-8")  # noqa: SIM115 - closed by shutdown()
        files.append(handle)
        lines = ConsoleSpanExporter(out=handle, formatter=lambda span: span.to_json(indent=None) + "\n")
        provider.add_span_processor(SimpleSpanProcessor(lines))
    return Tracing(provider, provider.get_tracer("refarch"), files=files)


def install(tracing: Tracing | None, *, owned: bool = False) -> Tracing | None:
    """Make `tracing` the active one (None: off); returns the one it replaces. A caller's
    own Tracing (owned=False) outlives the runs it traces: shut it down when done."""
    global _ACTIVE
    with _LOCK:
        previous, _ACTIVE = _ACTIVE, tracing
    if tracing is not None:
        tracing.owned = owned
    return previous


@contextlib.contextmanager
def run_span(settings: Settings, env: Mapping[str, str], **attributes: Any) -> Iterator[None]:
    """Around one run: the `run` span (of the installed Tracing, else one started for this
    run from `settings` and `env` and shut down after it); the tier spans end with it."""
    tracing = _ACTIVE
    started = None
    if tracing is None:
        started = start(settings, env)
        if started is None:
            yield
            return
        install(started, owned=True)
        tracing = started
    span = tracing.tracer.start_span(
        f"refarch {attributes.get('action', 'run')}", attributes=_clean(attributes)
    )
    tracing.run, tracing.tiers, tracing.tier_ends = span, {}, {}
    try:
        yield
    finally:
        for number, tier in tracing.tiers.items():
            tier.end(end_time=tracing.tier_ends.get(number))
        span.end()
        tracing.run = None
        if started is not None:
            install(None)
            started.shutdown()


@contextlib.contextmanager
def unit_span(unit: str, account: str, tier: int, action: str) -> Iterator[Any]:
    """One unit of the run (in its worker thread), under its tier's span."""
    tracing = _ACTIVE
    if tracing is None or tracing.run is None:
        yield None
        return
    from opentelemetry import trace  # noqa: PLC0415 - imported already: tracing is on

    with _LOCK:
        parent = tracing.tiers.get(tier)
        if parent is None:
            context = trace.set_span_in_context(tracing.run)
            parent = tracing.tracer.start_span(
                f"tier {tier}", context=context, attributes={"refarch.tier": tier}
            )
            tracing.tiers[tier] = parent
    attributes = {
        "refarch.unit": unit,
        "refarch.account": account,
        "refarch.action": action,
        "refarch.tier": tier,
    }
    with tracing.tracer.start_as_current_span(
        unit, context=trace.set_span_in_context(parent), attributes=attributes
    ) as span:
        yield span
    with _LOCK:
        tracing.tier_ends[tier] = max(tracing.tier_ends.get(tier, 0), time.time_ns())


@contextlib.contextmanager
def attempt_span(number: int, retry_reason: str | None) -> Iterator[Any]:
    """One attempt of the current unit."""
    tracing = _ACTIVE
    if tracing is None or tracing.run is None:
        yield None
        return
    attributes: dict[str, Any] = {"refarch.attempt": number}
    if retry_reason:
        attributes["refarch.retry_reason"] = retry_reason
    name = f"attempt {number}"
    with tracing.tracer.start_as_current_span(name, context=_parent(tracing), attributes=attributes) as span:
        yield span


@contextlib.contextmanager
def tool_span(argv: Sequence[str]) -> Iterator[tuple[dict[str, str], Any]]:
    """One tool process; yields the environment it adds to the child (TRACEPARENT) and the span."""
    tracing = _ACTIVE
    if tracing is None or tracing.run is None:
        yield {}, None
        return
    name = Path(str(argv[0])).name
    command = " ".join([name, *(str(a) for a in argv[1:2] if not str(a).startswith("-"))])
    attributes = {"process.command": command}
    with tracing.tracer.start_as_current_span(
        command, context=_parent(tracing), attributes=attributes
    ) as span:
        context = span.get_span_context()
        parent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
        yield {"TRACEPARENT": parent}, span


def traced_process(spawn: Spawn) -> Spawn:
    """`run_process` as a span of the run's trace when tracing is on: the child gets
    TRACEPARENT in its `env`, the span the exit code."""

    @functools.wraps(spawn)
    def traced(argv: Sequence[str], *args: Any, env: Mapping[str, str], **kwargs: Any) -> Any:
        with tool_span(argv) as (trace_env, span):
            result = spawn(argv, *args, env={**env, **trace_env} if trace_env else env, **kwargs)
            set_result(span, **{"process.exit_code": result.returncode})
            return result

    return cast(Spawn, traced)


def set_result(span: Any, **attributes: Any) -> None:
    """Attributes known at the end of a span (result, exit code); nothing when off."""
    if span is not None:
        span.set_attributes(_clean(attributes))


def _parent(tracing: Tracing) -> Any:
    """The current span's context in this thread, else the run span's (a process the run
    starts outside any unit: git, the engine's version probe)."""
    from opentelemetry import trace  # noqa: PLC0415 - imported already: tracing is on

    if trace.get_current_span().get_span_context().is_valid:
        return None
    return trace.set_span_in_context(tracing.run)


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """OpenTelemetry attribute values: str, bool, int, float; None left out; names prefixed."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        name = key if "." in key else f"refarch.{key}"
        out[name] = value if isinstance(value, str | bool | int | float) else str(value)
    return out
