"""Discovery benchmark: whole `load_repo` processes on synthetic live repos of 1,000 and 10,000 units.

Each measurement is a fresh process (`python -c` loading the repo), run round-robin with
`python -c pass` so that the machine's load falls on all alike; medians are printed, with the
load average before and after. Cold: the unit cache (.refarch/cache) is removed before each
run; warm: it is full. Beside them: the raw python-hcl2 parse rate (`hcl2.parses_to_tree` on
every .hcl file of the repo, one core) and the parse floor it implies on this machine's cores,
CPU time (user + system of the process and its workers) and the largest process's peak RSS.
Usage: python bench/discover.py [SIZES...]   (default: 1000 10000)
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

ACCOUNTS = ["security", "shared-services", "logs", "dev", "stage", "prod"]
REGIONS = ["us-east-1", "us-west-2"]
KINDS = ["vpc", "mysql", "redis", "app", "worker", "queue", "bucket", "dns"]
# units -> {measure: (target seconds over `python -c pass`, or MB)}: issue 20.3
TARGETS = {
    1000: {"cold": 1.0, "warm": 0.15},
    10000: {"cold": 8.0, "warm": 1.0, "peak_mb": 300.0},
}
ROUNDS = {1000: 5}  # larger repos: 3

ROOT_HCL = """
locals {
  account_vars = read_terragrunt_config(find_in_parent_folders("account.hcl"))
  region_vars  = read_terragrunt_config(find_in_parent_folders("region.hcl"))
  account_name = local.account_vars.locals.account_name
  aws_region   = local.region_vars.locals.aws_region
}
remote_state {
  backend = "s3"
  config = {
    bucket         = "acme-${local.account_name}-${local.aws_region}-tf-state"
    key            = "${path_relative_to_include()}/terraform.tfstate"
    region         = local.aws_region
    dynamodb_table = "terraform-locks"
    encrypt        = true
  }
}
inputs = merge(local.account_vars.locals, local.region_vars.locals)
"""

ENVCOMMON = """
locals {
  env = read_terragrunt_config(find_in_parent_folders("env.hcl")).locals.environment
}
terraform {
  source = "git::git@github.com:acme/modules.git//%(kind)s?ref=v1.0.0"
}
inputs = {
  name = "%(kind)s-${local.env}"
  tags = { Environment = local.env, Kind = "%(kind)s" }
}
"""

UNIT = """
include "root" {
  path = find_in_parent_folders("root.hcl")
}
include "envcommon" {
  path   = "${dirname(find_in_parent_folders("root.hcl"))}/_envcommon/%(kind)s.hcl"
  expose = true
}
%(deps)s
inputs = {
  index      = %(index)d
  cidr_block = cidrsubnet("10.0.0.0/8", 16, %(index)d)
  label      = upper(include.envcommon.locals.env)
}
"""

LOAD = (
    "import sys; from refarch.config import load_repo; "
    "load_repo(sys.argv[1], env={}, jobs=int(sys.argv[2]) or None)"
)
RAW = """
import sys, time
from pathlib import Path
import hcl2
hcl2.parses_to_tree("a = 1\\n")
texts = [p.read_text() for p in Path(sys.argv[1]).rglob("*.hcl")]
started = time.process_time()
for text in texts:
    hcl2.parses_to_tree(text)
print(len(texts) / (time.process_time() - started))
"""


def generate(root: Path, units: int) -> int:
    """Write a live repo with `units` units; return the number of .hcl files written."""
    files = {"root.hcl": ROOT_HCL}
    for kind in KINDS:
        files[f"_envcommon/{kind}.hcl"] = ENVCOMMON % {"kind": kind}
    per_region = max(1, units // (len(ACCOUNTS) * len(REGIONS)))
    made = 0
    index = 0
    while made < units:
        for account in ACCOUNTS:
            account_id = f"{ACCOUNTS.index(account) + 1:012d}"
            files[f"{account}/account.hcl"] = (
                f'locals {{\n  account_name = "{account}"\n  aws_account_id = "{account_id}"\n}}\n'
            )
            files[f"{account}/env.hcl"] = f'locals {{\n  environment = "{account}"\n}}\n'
            for region in REGIONS:
                files[f"{account}/{region}/region.hcl"] = f'locals {{\n  aws_region = "{region}"\n}}\n'
                previous = None
                for n in range(per_region):
                    if made >= units:
                        break
                    kind = KINDS[n % len(KINDS)]
                    name = f"{kind}-{index}"
                    deps = ""
                    if previous:
                        deps = (
                            f'dependency "prev" {{\n  config_path = "../{previous}"\n'
                            f'  mock_outputs = {{ id = "mock" }}\n}}\n'
                        )
                    files[f"{account}/{region}/{name}/terragrunt.hcl"] = UNIT % {
                        "kind": kind,
                        "deps": deps,
                        "index": index % 65536,
                    }
                    previous = name if n % 4 != 3 else None
                    made += 1
                    index += 1
            if made >= units:
                break
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return len(files)


def run(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """One whole process: wall seconds, CPU seconds (with its workers), peak RSS of the
    largest process of its tree."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if child.returncode:
        raise SystemExit(f"{argv} failed ({child.returncode})")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def measure(root: Path, units: int) -> dict[str, dict[str, float]]:
    """Medians of round-robin runs of `python -c pass`, cold, warm (and cold on one core)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    python = sys.executable
    commands = {
        "pass": [python, "-c", "pass"],
        "cold": [python, "-c", LOAD, str(root), "0"],
        "warm": [python, "-c", LOAD, str(root), "0"],
    }
    if units <= 1000:
        commands["cold, 1 core"] = [python, "-c", LOAD, str(root), "1"]
    run(commands["warm"], env)  # .pyc files written, the cache filled (and its file status noted)
    run(commands["warm"], env)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    for _ in range(ROUNDS.get(units, 3)):
        for name, argv in commands.items():
            if name.startswith("cold"):
                shutil.rmtree(root / ".refarch", ignore_errors=True)
            runs[name].append(run(argv, env))
            if name.startswith("cold"):
                run(commands["warm"], env)  # the next warm run finds a full cache again
    return {
        name: {key: statistics.median(r[key] for r in results) for key in ("wall", "cpu", "peak_mb")}
        for name, results in runs.items()
    }


def main(sizes: list[int]) -> None:
    cores = os.cpu_count() or 1
    print(f"discovery benchmark on {cores} core(s): whole processes, medians of round-robin runs")
    for units in sizes:
        with tempfile.TemporaryDirectory(prefix="refarch-bench-") as tmp:
            root = Path(tmp)
            files = generate(root, units)
            time.sleep(2.1)  # the files settle, as a repo checked out earlier has
            raw_rate = float(subprocess.check_output([sys.executable, "-c", RAW, str(root)], text=True))
            load_before = os.getloadavg()[0]
            figures = measure(root, units)
            load_after = os.getloadavg()[0]
        base = figures["pass"]["wall"]
        floor = files / raw_rate / cores
        print(
            f"\n{units:,} units ({files:,} .hcl files); load average {load_before:.1f} -> {load_after:.1f}; "
            f"raw python-hcl2 parse: {raw_rate:,.0f} files/s on one core, "
            f"{floor:.2f} s for these files on {cores} cores"
        )
        print(f"  {'':<13} {'wall s':>7} {'over pass':>9} {'cpu s':>7} {'peak MB':>8} {'target':>8}")
        targets = TARGETS.get(units, {})
        for name, values in figures.items():
            over = values["wall"] - base
            target = targets.get(name)
            verdict = "" if target is None else f"<={target:.2f} " + ("ok" if over <= target else "MISSED")
            shown = "" if name == "pass" else f"{over:.3f}"
            print(
                f"  {name:<13} {values['wall']:>7.3f} {shown:>9} {values['cpu']:>7.2f} "
                f"{values['peak_mb']:>8.0f} {verdict}"
            )
        if "peak_mb" in targets:
            peak = max(figures["cold"]["peak_mb"], figures["warm"]["peak_mb"])
            print(f"  peak RSS {peak:.0f} MB (target <= {targets['peak_mb']:.0f} MB)")
    print("\ntargets: issue 20.3, wall time over `python -c pass`; a loaded machine makes wall times longer")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:] if a.isdigit()] or [1000, 10000])
