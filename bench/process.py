"""Per-process overhead of refarch's spawner: `sh` (run_process today) against `subprocess`.

Starts N short processes (`true`) one after the other, in turns, and prints the median cost
of one start-stream-reap. "subprocess" is how run_process spawned before it used sh: Popen in a
new session, stdout and stderr on pipes, one reader thread per pipe, text-mode lines. Each
is measured without the guard (as `capture` runs git) and, on fewer processes, under
refarch/exec/guard.py (as every tool runs). sh forks the interpreter itself where subprocess
uses vfork, so the cost grows with the parent's memory: the second table repeats the
measure in a parent that has loaded the libraries of a real run. The last row is a tool
that prints 100,000 lines (sh's reader costs more per line). Figures only.

    python bench/process.py [--count N]
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refarch.exec.process import GUARD, run_process  # noqa: E402

Spawn = Callable[[list[str], str, dict[str, str]], int]
TRUE = shutil.which("true") or "/bin/true"


def with_subprocess(argv: list[str], cwd: str, env: dict[str, str]) -> int:
    """The spawn path of run_process before sh: Popen, two pumps, wait."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    lines: list[str] = []

    def pump(stream: IO[str]) -> None:
        lines.extend(raw.rstrip("\n") for raw in stream)

    assert proc.stdout is not None and proc.stderr is not None
    pumps = [threading.Thread(target=pump, args=(s,), daemon=True) for s in (proc.stdout, proc.stderr)]
    for thread in pumps:
        thread.start()
    code = proc.wait()
    for thread in pumps:
        thread.join()
    return code


def with_sh(argv: list[str], cwd: str, env: dict[str, str]) -> int:
    return run_process(argv, cwd=cwd, env=env, guard=False).returncode


def per_process(argv: list[str], count: int) -> tuple[float, float]:
    """Median milliseconds of one start with subprocess and with sh, taken in turns (the
    machine is shared: turns make both ways see the same load, the median drops outliers)."""
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    times: dict[Spawn, list[float]] = {with_subprocess: [], with_sh: []}
    for spawn in times:
        spawn(argv, ".", env)  # warm: imports, first fork
    for _ in range(count):
        for spawn, took in times.items():
            started = time.perf_counter()
            assert spawn(argv, ".", env) == 0
            took.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[with_subprocess]), statistics.median(times[with_sh])


def table(count: int) -> None:
    guarded = [sys.executable, "-I", str(GUARD), TRUE]
    talker = [sys.executable, "-c", "for i in range(100000): print('line', i, 'x' * 60)"]
    rows = [
        ("`true`", [TRUE], count),
        ("`true` under guard.py", guarded, max(count // 4, 1)),
        ("100,000 lines of output", talker, 5),  # the cost per line, as a plan's output
    ]
    print(f"{'':32}{'subprocess':>13}{'sh':>11}{'sh - subprocess':>18}")
    for label, argv, n in rows:
        old, new = per_process(argv, n)
        print(f"{label + f' x{n}':32}{old:>10.1f} ms{new:>8.1f} ms{new - old:>+15.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    count = parser.parse_args().count
    print(f"per process, median of {count} sequential starts each way ({os.cpu_count()} cores)")
    print("parent: bare interpreter")
    table(count)
    for module in ("boto3", "jinja2", "networkx", "refarch.runner.run"):  # as while tools run
        importlib.import_module(module)

    ballast = bytearray(200 * 1024 * 1024)  # caches of a large repo, touched
    ballast[:: resource.getpagesize()] = b"\1" * len(ballast[:: resource.getpagesize()])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"parent: refarch's libraries loaded, {rss:.0f} MB resident")
    table(count)


if __name__ == "__main__":
    main()
