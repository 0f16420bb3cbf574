"""`refarch demo [DIR]` as one request: the twins (`demo`) or the shipped modules with the
real provider (`demo_real_modules`), traced to a file when asked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from refarch import telemetry
from refarch.errors import UsageError
from refarch.exec.process import Interrupt
from refarch.jobs.demo import DemoResult, EventCallback, demo
from refarch.jobs.demo_real import RealDemoResult, demo_real_modules
from refarch.settings import Settings

MODULES = ("twins", "real")


@dataclass(frozen=True)
class DemoRequest:
    """What `refarch demo` runs: DIR (default .refarch/demo, .refarch/demo-real with the real
    modules), which modules, and for the twins whether to keep the embedded AWS and destroy."""

    directory: str | Path | None = None
    modules: str = "twins"  # twins: modules-demo/ (no provider); real: modules/ with hashicorp/aws
    keep: bool = False  # twins only: save the embedded AWS and start the next keep run from it
    destroy: bool = False  # twins: destroy after the apply (the real modules always destroy)
    trace: Path | None = None  # the runs' OpenTelemetry spans, one JSON span a line


def run_demo(
    request: DemoRequest,
    *,
    on_event: EventCallback | None = None,
    interrupt: Interrupt | None = None,
) -> DemoResult | RealDemoResult:
    """Deploy the reference architecture on an embedded AWS (see `demo` and
    `demo_real_modules`); both results have `ok` and `exit_code`."""
    if request.modules not in MODULES:
        raise UsageError(f"unknown modules {request.modules!r}", hint="twins or real")
    if request.modules == "real" and request.keep:
        raise UsageError("--keep is for the twins: the real demo always starts anew and destroys")
    tracing = telemetry.start(Settings(), trace_file=Path(request.trace)) if request.trace else None
    previous = telemetry.install(tracing)
    try:
        if request.modules == "real":
            return demo_real_modules(request.directory, on_event=on_event, interrupt=interrupt)
        return demo(
            request.directory,
            keep=request.keep,
            destroy=request.destroy,
            on_event=on_event,
            interrupt=interrupt,
        )
    finally:
        telemetry.install(previous)
        if tracing is not None:
            tracing.shutdown()
