"""Startup benchmark: `refarch --help` and a 1,000-unit `refarch graph`, beside `python -c pass`.

Each command runs in a fresh process, round-robin (so the machine's load falls on all of them
alike), best of N: wall time, and CPU time (user + system, the process and the workers it
waits for), which a busy machine disturbs less. Warm: the discovery cache (.refarch/cache)
is filled; cold: it is removed before each run. Python's bytecode cache is on in both (an
installed refarch has its .pyc).
Usage: python bench/startup.py [N]   (default: 10)
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from discover import generate  # the synthetic live repo of bench/discover.py

UNITS = 1000
# name, target: seconds over `python -c pass` (None: the baseline)
TARGETS = {
    "python -c pass": None,
    "refarch --help": 0.1,
    "refarch graph, warm": 0.25,
    "refarch graph, cold": 1.5,
}


def refarch() -> list[str]:
    """The installed console script beside this Python, else the module."""
    script = Path(sys.executable).parent / "refarch"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from refarch.cli import main; main()"]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of `argv`."""
    started, cpu_before = time.perf_counter(), cpu()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, cpu() - cpu_before


def main(rounds: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="refarch-startup-") as tmp:
        root = Path(tmp) / "live"
        generate(root, UNITS)
        graph = [*refarch(), "graph", str(root)]
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "refarch --help": [*refarch(), "--help"],
            "refarch graph, warm": graph,
            "refarch graph, cold": graph,
        }
        for argv in commands.values():  # write the .pyc files and fill the cache once
            timed(argv, env, root)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, argv in commands.items():
                if name.endswith("cold"):
                    shutil.rmtree(root / ".refarch", ignore_errors=True)
                times[name].append(timed(argv, env, root))
                if name.endswith("cold"):
                    timed(graph, env, root)  # the next warm run finds a full cache again
    base = min(wall for wall, _ in times["python -c pass"])
    base_cpu = min(used for _, used in times["python -c pass"])
    print(
        f"startup benchmark on {os.cpu_count()} core(s), {UNITS:,} units; best of {rounds} "
        f"round-robin runs, each in a fresh process; load average now {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'command':<22} {'wall s':>7} {'median':>7} {'over pass':>9} {'cpu s':>7} {'over pass':>9} "
        f"{'target':>7}"
    )
    for name, values in times.items():
        target = TARGETS[name]
        best = min(wall for wall, _ in values)
        best_cpu = min(used for _, used in values)
        median = statistics.median(wall for wall, _ in values)
        over = "" if target is None else f"{best - base:.3f}"
        over_cpu = "" if target is None else f"{best_cpu - base_cpu:.3f}"
        goal = "" if target is None else f"<{target:.2f}"
        verdict = "" if target is None else ("ok" if best - base <= target else "MISSED")
        print(
            f"{name:<22} {best:>7.3f} {median:>7.3f} {over:>9} {best_cpu:>7.3f} {over_cpu:>9} "
            f"{goal:>7} {verdict}"
        )
    print("targets are on wall time over `python -c pass`; cold parses in worker processes (CPU adds up)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
