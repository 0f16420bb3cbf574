"""Discovery benchmark: synthetic live repos of 100, 1,000 and 5,000 units.

Prints units/s cold (one core and all cores), warm (cache hit), peak memory, and the raw
python-hcl2 tree-parse rate for the same files, each measured in a fresh child process.
Usage: python bench/discover.py [SIZES...]   (default: 100 1000 5000)
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ACCOUNTS = ["security", "shared-services", "logs", "dev", "stage", "prod"]
REGIONS = ["us-east-1", "us-west-2"]
KINDS = ["vpc", "mysql", "redis", "app", "worker", "queue", "bucket", "dns"]

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


def child(mode: str, root: str) -> None:
    """Run one measurement in this (fresh) process and print JSON."""
    import hcl2  # noqa: PLC0415 - imported in the child only, so the parent stays light

    from refarch.config import load_repo  # noqa: PLC0415
    from refarch.config.hcl import parse_text  # noqa: PLC0415

    hcl2.parses_to_tree("a = 1\n")  # load the grammars before timing, as a long-lived process would
    parse_text("a = 1\n")
    started = time.perf_counter()
    if mode == "raw":
        count = 0
        for path in Path(root).rglob("*.hcl"):
            hcl2.parses_to_tree(path.read_text())
            count += 1
        result = {"files": count}
    else:
        jobs = 1 if mode == "cold1" else None
        repo = load_repo(root, jobs=jobs, cache=True, env={})
        result = {"units": len(repo.units)}
    result["seconds"] = time.perf_counter() - started
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(mode: str, root: Path, repeat: int) -> dict[str, float]:
    """Best of `repeat` runs, each in a fresh process (cold runs start without a cache)."""
    best: dict[str, float] | None = None
    for _ in range(repeat):
        if mode.startswith("cold"):
            shutil.rmtree(root / ".refarch", ignore_errors=True)
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(root)], check=True, capture_output=True, text=True
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    assert best is not None
    return best


def main(sizes: list[int]) -> None:
    print(
        f"discovery benchmark on {os.cpu_count()} core(s); best of 2-3 runs, each in a fresh "
        f"process; load average now {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'units':>6} {'hcl files':>9} {'raw parse/s':>11} {'cold 1 core':>11} {'cold all':>9} "
        f"{'warm':>9} {'cold/raw':>8} {'warm/cold':>9} {'peak MB':>8}"
    )
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="refarch-bench-") as tmp:
            root = Path(tmp)
            generate(root, size)
            repeat = 3 if size <= 1000 else 2
            raw = measure("raw", root, repeat)
            cold1 = measure("cold1", root, repeat)
            cold = measure("cold", root, repeat)
            warm = measure("warm", root, repeat)
            raw_rate = raw["files"] / raw["seconds"]
            cold1_rate = cold1["units"] / cold1["seconds"]
            cold_rate = cold["units"] / cold["seconds"]
            warm_rate = warm["units"] / warm["seconds"]
            peak = max(cold1["peak_mb"], cold["peak_mb"], warm["peak_mb"])
            print(
                f"{size:>6} {int(raw['files']):>9} {raw_rate:>11.0f} {cold1_rate:>11.0f} "
                f"{cold_rate:>9.0f} {warm_rate:>9.0f} {cold1_rate / raw_rate:>8.2f} "
                f"{warm_rate / cold1_rate:>9.1f} {peak:>8.0f}"
            )
    print("targets: cold(1 core)/raw >= 0.8, faster with more cores, warm/cold >= 20, 5,000 units < 400 MB")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main([int(a) for a in sys.argv[1:]] or [100, 1000, 5000])
