"""Real modules: seconds and provider starts per unit when `refarch demo --modules real` applies
the shipped modules with the real hashicorp/aws provider on the embedded AWS, plans them again
and destroys them.

Terraform and the provider are wrapped by two small shell scripts that log each start (the
unit's folder, the Terraform command, start and end times), so the figures are per unit and
per command: init / plan / apply / output / destroy seconds, Terraform invocations, and
provider starts (each start loads the ~700 MB provider, the cost this bench is about).
The provider comes from REFARCH_TF_PLUGIN_MIRROR (default /opt/tf-plugins, unpacked layout).

    python bench/real_modules.py [--parallelism 4] [--terraform PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refarch.engines.terraform import pinned_terraform_binary  # noqa: E402
from refarch.jobs.demo_real import PROVIDER, demo_real_modules  # noqa: E402

MIRROR = Path(os.environ.get("REFARCH_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
WRAPPER = """#!/bin/sh
start=$(date +%s.%N)
{real} "$@"
code=$?
echo "{kind} $(date +%s.%N) $start $PWD $1" >> {log}
exit $code
"""
PROVIDER_WRAPPER = """#!/bin/sh
echo "provider $(date +%s.%N) - $PWD -" >> {log}
exec {real} "$@"
"""
COMMANDS = ("init", "plan", "apply", "output", "destroy")


def wrapped_mirror(target: Path, log: Path) -> Path:
    """A mirror whose provider is a script that logs its start and runs the real one."""
    folder = MIRROR / PROVIDER
    for version_dir in sorted(folder.iterdir()):
        platform = version_dir / "linux_amd64"
        for binary in platform.glob("terraform-provider-aws*"):
            out = target / PROVIDER / version_dir.name / "linux_amd64" / binary.name
            out.parent.mkdir(parents=True)
            out.write_text(PROVIDER_WRAPPER.format(real=binary, log=log))
            out.chmod(0o755)
            return target
    raise SystemExit(f"no provider binary under {folder}")


def unit_of(folder: str) -> str:
    """work/<account>_<region>_<kind>-<hash>/module -> account/region/kind."""
    parts = Path(folder).parts
    if "module" in parts:
        slug = parts[parts.index("module") - 1].rsplit("-", 1)[0]
        return slug.replace("_", "/", 2)
    return "(other)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--terraform", default=pinned_terraform_binary())
    args = parser.parse_args()
    if not (MIRROR / PROVIDER).is_dir():
        raise SystemExit(f"no filesystem mirror of the AWS provider at {MIRROR}")
    with tempfile.TemporaryDirectory(prefix="refarch-bench-real-") as tmp:
        work = Path(tmp)
        log = work / "starts.log"
        terraform = work / "terraform"
        terraform.write_text(WRAPPER.format(real=args.terraform, kind="terraform", log=log))
        terraform.chmod(0o755)
        env = {
            **os.environ,
            "REFARCH_TF_PLUGIN_MIRROR": str(wrapped_mirror(work / "mirror", log)),
            "XDG_CACHE_HOME": str(work / "cache"),  # a provider cache of its own: the wrapper
            "XDG_CONFIG_HOME": str(work / "config"),
        }
        started = time.perf_counter()
        result = demo_real_modules(
            work / "demo", env=env, terraform=str(terraform), parallelism=args.parallelism
        )
        wall = time.perf_counter() - started
        report(log, result.stages, wall, result.ok)


def report(log: Path, stages: object, wall: float, ok: bool) -> None:
    seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    invocations: dict[str, int] = defaultdict(int)
    provider: dict[str, int] = defaultdict(int)
    for line in log.read_text().splitlines():
        kind, end, start, folder, command = line.split(" ", 4)
        unit = unit_of(folder)
        if kind == "provider":
            provider[unit] += 1
            continue
        if command == "version":
            continue
        invocations[unit] += 1
        seconds[unit][command] += float(end) - float(start)
    header = f"{'unit':<36}" + "".join(f"{c:>9}" for c in COMMANDS) + f"{'tf runs':>9}{'provider':>10}"
    print(header)
    for unit in sorted(invocations):
        row = "".join(f"{seconds[unit].get(c, 0.0):>9.1f}" for c in COMMANDS)
        print(f"{unit:<36}{row}{invocations[unit]:>9}{provider[unit]:>10}")
    units = [u for u in invocations if u != "(other)"]
    total_seconds = sum(sum(seconds[u].values()) for u in units)
    print(
        f"\n{len(units)} units: {total_seconds / max(len(units), 1):.1f} s of Terraform per unit, "
        f"{sum(invocations[u] for u in units) / max(len(units), 1):.1f} Terraform runs and "
        f"{sum(provider[u] for u in units) / max(len(units), 1):.1f} provider starts per unit; "
        f"wall {wall:.0f} s ({stages}); ok={ok}"
    )


if __name__ == "__main__":
    main()
