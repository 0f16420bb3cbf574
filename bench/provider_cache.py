"""Provider cache: 50 units requiring the same provider, applied at parallelism 8, with and
without refarch's machine-wide provider cache (refarch/engines/provider_cache.py).

The provider comes from a local filesystem mirror in the packed layout (a zip, as a registry
download delivers it), so Terraform unpacks a copy per unit unless a cache is shared. The
provider is the real hashicorp/aws found at REFARCH_TF_PLUGIN_MIRROR (default /opt/tf-plugins,
unpacked layout; this bench zips it once). Units keep local state and declare no resource,
so nothing calls AWS; Terraform still starts the provider to read its schema.

Prints, per arm: provider copies on disk (regular files, not links), their bytes, wall time
of the run (init dominates), and units that failed. Target with the cache: 1 copy, 0 failed.

    python bench/provider_cache.py [--units 50] [--parallelism 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refarch import load_repo, plan  # noqa: E402
from refarch.engines.terraform import TerraformEngine, pinned_terraform_binary  # noqa: E402
from refarch.runner.run import RunOptions, run  # noqa: E402
from refarch.runner.unit import UnitAccess  # noqa: E402

MIRROR = Path(os.environ.get("REFARCH_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
PROVIDER = "registry.terraform.io/hashicorp/aws"

MODULE = """terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "%s" }
  }
}
variable "name" { type = string }
output "name" { value = var.name }
"""
UNIT = """terraform {
  source = "../../../modules//needs-aws"
}
inputs = { name = "%s" }
"""


class NoAws:
    """Units here touch no AWS: credentials are not needed."""

    def for_unit(self, unit: object) -> UnitAccess:
        return UnitAccess({}, {"Account": "000000000000", "Arn": "bench"})


def packed_mirror(target: Path) -> tuple[Path, str] | None:
    """Zip the unpacked provider into a packed-layout mirror; (mirror, version) or None."""
    folder = MIRROR / PROVIDER
    versions = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    for version in versions:
        platform = folder / version / "linux_amd64"
        if not platform.is_dir():
            continue
        out = target / PROVIDER / f"terraform-provider-aws_{version}_linux_amd64.zip"
        out.parent.mkdir(parents=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            for path in platform.iterdir():
                info = zipfile.ZipInfo(path.name)
                info.external_attr = (path.stat().st_mode & 0o777) << 16
                with path.open("rb") as source, archive.open(info, "w", force_zip64=True) as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
        return target, version
    return None


def write_repo(root: Path, units: int, version: str) -> None:
    (root / "modules" / "needs-aws").mkdir(parents=True)
    (root / "modules" / "needs-aws" / "main.tf").write_text(MODULE % version)
    (root / "dev").mkdir()
    (root / "dev" / "account.hcl").write_text('locals {\n  account_name = "dev"\n}\n')
    for index in range(units):
        unit = root / "dev" / "us-east-1" / f"app-{index:02d}"
        unit.mkdir(parents=True)
        (unit / "terragrunt.hcl").write_text(UNIT % f"app-{index:02d}")


def copies(*folders: Path) -> tuple[int, int]:
    """Provider binaries on disk (regular files, links not followed) and their bytes."""
    count = size = 0
    for folder in folders:
        for current, _dirs, files in os.walk(folder):
            for name in files:
                path = Path(current) / name
                if (
                    name.startswith("terraform-provider-")
                    and not path.is_symlink()
                    and not name.endswith(".zip")
                ):
                    count += 1
                    size += path.stat().st_size
    return count, size


def arm(
    name: str, work: Path, units: int, version: str, env: dict[str, str], parallelism: int, *, cache: bool
) -> None:
    root = work / name
    write_repo(root, units, version)
    home = work / f"{name}-home"
    home.mkdir()
    arm_env = {**env, "HOME": str(home)}
    engine = TerraformEngine(binary=pinned_terraform_binary(), provider_cache=cache)
    repo = load_repo(root, env=arm_env, cache=False)
    started = time.perf_counter()
    report = run(
        plan(repo, "apply"),
        "apply",
        engine=engine,
        credentials=NoAws(),
        base_env=arm_env,
        options=RunOptions(parallelism=parallelism, history=False),
    )
    wall = time.perf_counter() - started
    count, size = copies(root / ".refarch", home)
    failed = [u.path for u in report.units.values() if not u.ok]
    print(
        f"{name:<18} units {units:>3}  N {parallelism}  provider copies {count:>3}  "
        f"{size / 2**30:7.2f} GiB  wall {wall:6.1f}s  failed {len(failed)}"
    )
    for path in failed[:3]:
        print(f"   {path}: {report.units[path].message.splitlines()[-1:]}")
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--parallelism", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="refarch-bench-providers-") as tmp:
        work = Path(tmp)
        found = packed_mirror(work / "mirror")
        if found is None:
            print(f"provider cache: skipped (no {PROVIDER} under {MIRROR}; set REFARCH_TF_PLUGIN_MIRROR)")
            return
        mirror, version = found
        cli_config = work / "terraformrc"
        cli_config.write_text(
            f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n'
        )
        env = {"PATH": os.environ["PATH"], "TF_CLI_CONFIG_FILE": str(cli_config), "CHECKPOINT_DISABLE": "1"}
        print(f"provider cache: hashicorp/aws {version} from a packed filesystem mirror, Terraform 1.0.3")
        arm("without cache", work, args.units, version, env, args.parallelism, cache=False)
        arm("refarch cache", work, args.units, version, env, args.parallelism, cache=True)


if __name__ == "__main__":
    main()
