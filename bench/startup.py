"""Startup benchmark: `refarch --help` and a 1,000-unit `refarch graph`, beside `python -c pass`.

Each command runs in a fresh process, round-robin (so the machine's load falls on all of them
alike), best of N. Warm: the discovery cache (.refarch/cache) is filled; cold: it is removed
before each run. Python's bytecode cache is on in both (an installed refarch has its .pyc).
Usage: python bench/startup.py [N]   (default: 10)
"""

from __future__ import annotations

import os
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


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


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
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, argv in commands.items():
                if name.endswith("cold"):
                    shutil.rmtree(root / ".refarch", ignore_errors=True)
                times[name].append(timed(argv, env, root))
                if name.endswith("cold"):
                    timed(graph, env, root)  # the next warm run finds a full cache again
    base = min(times["python -c pass"])
    print(
        f"startup benchmark on {os.cpu_count()} core(s), {UNITS:,} units; best of {rounds} "
        f"round-robin runs, each in a fresh process; load average now {os.getloadavg()[0]:.1f}"
    )
    print(f"{'command':<22} {'best s':>7} {'median s':>8} {'over pass':>9} {'target':>8}")
    for name, values in times.items():
        target = TARGETS[name]
        best = min(values)
        over = "" if target is None else f"{best - base:.3f}"
        goal = "" if target is None else f"<{target:.2f}"
        verdict = "" if target is None else ("ok" if best - base <= target else "MISSED")
        print(f"{name:<22} {best:>7.3f} {statistics.median(values):>8.3f} {over:>9} {goal:>8} {verdict}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
