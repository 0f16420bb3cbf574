"""What traces cost (refarch/telemetry.py): nothing when off, a little per process when on.

Starts N short processes (`true`, no guard) through run_process three ways, in turns: tracing
off (no Tracing installed: the hooks check one variable), on with the SDK's in-memory
exporter inside a run span (each process a span, TRACEPARENT in its environment), and the
import check: whether importing refarch's spawner loads OpenTelemetry (it must not). Prints
the median cost of one process per arm. Figures only.

    python bench/telemetry.py [--count N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refarch import telemetry  # noqa: E402
from refarch.exec.process import run_process  # noqa: E402
from refarch.settings import Settings  # noqa: E402

TRUE = shutil.which("true") or "/bin/true"


def one(env: dict[str, str]) -> float:
    started = time.perf_counter()
    run_process([TRUE], cwd=".", env=env, guard=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    env = {"PATH": "/usr/bin:/bin"}
    code = "import sys, refarch.exec.process; print(any(m.startswith('opentelemetry') for m in sys.modules))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    print(f"opentelemetry imported by refarch.exec.process: {imported.stdout.strip()}")
    try:
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415 - an extra
            InMemorySpanExporter,
        )
    except ImportError:
        print("tracing on: skipped (pip install 'refarch[telemetry]')")
        return
    exporter = InMemorySpanExporter()
    tracing = telemetry.start(Settings(), {}, exporter=exporter)
    off: list[float] = []
    on: list[float] = []
    for _ in range(args.count):
        off.append(one(env))
        telemetry.install(tracing)
        with telemetry.run_span(Settings(), {}, action="bench"):
            on.append(one(env))
        telemetry.install(None)
    assert tracing is not None
    tracing.shutdown()
    print(f"{'arm':<22}{'median ms':>10}")
    print(f"{'tracing off':<22}{statistics.median(off) * 1000:>10.2f}")
    print(f"{'tracing on (memory)':<22}{statistics.median(on) * 1000:>10.2f}")
    print(
        f"spans exported: {len(exporter.get_finished_spans())} ({args.count} runs, each a run and a process)"
    )


if __name__ == "__main__":
    main()
