"""Apply-all of a 5-account, 30-unit live repo with real Terraform 1.0.3 against a moto server.

Prints the wall time, the Terraform processes started, and how often each unit's outputs were
read (the promise: exactly once per unit per run, shared with every dependent). The modules
need no provider, so the figures are refarch + Terraform + S3/DynamoDB backend overhead.

    python bench/apply_terraform.py [--parallelism N]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refarch import load_repo, plan  # noqa: E402
from refarch.aws import AwsSessions  # noqa: E402
from refarch.engines.terraform import TerraformEngine, pinned_terraform_binary  # noqa: E402
from refarch.events import UnitFinished  # noqa: E402
from refarch.runner.run import RunOptions, run  # noqa: E402
from refarch.settings import Settings  # noqa: E402

ACCOUNTS = {  # in tier order: security, shared-services, then the rest
    "security": "111111111111",
    "shared-services": "222222222222",
    "logs": "333333333333",
    "dev": "444444444444",
    "prod": "666666666666",
}
TABLE = "terraform-locks"
FAKE = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

ROOT_HCL = """# bench: the state of each unit in its account's bucket (credentials from the runner)
locals {
  acct   = read_terragrunt_config(find_in_parent_folders("account.hcl")).locals
  region = read_terragrunt_config(find_in_parent_folders("region.hcl")).locals.aws_region
}
remote_state {
  backend = "s3"
  config = {
    bucket = "bench-${local.acct.account_name}-state"
    key = "${path_relative_to_include()}/terraform.tfstate"
    region = "us-east-1"
    dynamodb_table = "terraform-locks"
  }
}
inputs = { region = local.region, tags = { account = local.acct.account_name } }
"""

# Per account: (unit, module, upstream unit or None). Echo units take `name` from upstream.
LAYOUT = (
    ("us-east-1/base", "echo", None),
    ("us-east-1/net", "echo", "../base"),
    ("us-east-1/data", "echo", "../net"),
    ("us-east-1/app", "consumer", "../data"),
    ("us-west-2/base", "echo", "../../us-east-1/base"),
    ("us-west-2/app", "consumer", "../base"),
)


def unit_text(account: str, unit: str, module: str, upstream: str | None) -> str:
    lines = [
        'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}',
        f'terraform {{\n  source = "../../../../modules//{module}"\n}}',
    ]
    if account != "security" and unit == "us-east-1/base":
        upstream = "../../../security/us-east-1/base"  # cross-account, an earlier tier
    if upstream is None:
        lines.append(f'inputs = {{\n  name = "{account}"\n}}')
    else:
        lines.append(
            f'dependency "up" {{\n  config_path = "{upstream}"\n'
            '  mock_outputs = { greeting = "mock", details = { size = 0 } }\n}'
        )
        if module == "echo":
            lines.append(f'inputs = {{\n  name = "{unit}<-${{dependency.up.outputs.greeting}}"\n}}')
        else:
            lines.append(
                "inputs = {\n  upstream_greeting = dependency.up.outputs.greeting\n"
                "  upstream_details = dependency.up.outputs.details\n}"
            )
    return "\n\n".join(lines) + "\n"


def write_repo(base: Path) -> Path:
    live = base / "live"
    shutil.copytree(ROOT / "tests" / "fixtures" / "modules", base / "modules")
    live.mkdir()
    (live / "root.hcl").write_text(ROOT_HCL)
    for account, account_id in ACCOUNTS.items():
        folder = live / account
        folder.mkdir()
        (folder / "account.hcl").write_text(
            f'locals {{\n  account_name = "{account}"\n  aws_account_id = "{account_id}"\n}}\n'
        )
        for unit, module, upstream in LAYOUT:
            unit_dir = folder / unit
            unit_dir.mkdir(parents=True)
            region_file = unit_dir.parent / "region.hcl"
            if not region_file.exists():
                region_file.write_text(f'locals {{\n  aws_region = "{unit_dir.parent.name}"\n}}\n')
            (unit_dir / "terragrunt.hcl").write_text(unit_text(account, unit, module, upstream))
    return live


def make_backends(sessions: AwsSessions) -> None:
    for account, account_id in ACCOUNTS.items():
        sessions.client("s3", account_id, "us-east-1", account_name=account).create_bucket(
            Bucket=f"bench-{account}-state"
        )
        sessions.client("dynamodb", account_id, "us-east-1", account_name=account).create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallelism", type=int, default=4)
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="refarch-bench-") as tmp:
            settings = Settings(endpoint_url=endpoint, region="us-east-1")
            base_env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": tmp,
                **FAKE,
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_ENDPOINT_URL": endpoint,
            }
            session = boto3.Session(
                aws_access_key_id=FAKE["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE["AWS_SECRET_ACCESS_KEY"],
                region_name="us-east-1",
            )
            sessions = AwsSessions(settings, base_session=session)
            make_backends(sessions)
            live = write_repo(Path(tmp))
            started = time.perf_counter()
            repo = load_repo(live, env=base_env, settings=settings, cache=False)
            loaded = time.perf_counter()
            engine = TerraformEngine(settings, binary=pinned_terraform_binary())
            events: list[Any] = []
            report = run(
                plan(repo, "apply"),
                "apply",
                settings,
                engine=engine,
                sessions=sessions,
                base_env=base_env,
                options=RunOptions(parallelism=args.parallelism),
                on_event=events.append,
            )
            finished = time.perf_counter()
            return show(
                report, engine, len(repo.units), loaded - started, finished - loaded, args.parallelism, events
            )
    finally:
        server.stop()


def show(
    report: Any,
    engine: TerraformEngine,
    units: int,
    load_s: float,
    apply_s: float,
    parallelism: int,
    events: list[Any],
) -> int:
    reads = engine.stats.output_reads
    once = all(count == 1 for count in reads.values()) and len(reads) == units
    print(
        f"terraform engine apply-all: {units} units, {len(ACCOUNTS)} accounts, "
        f"parallelism {parallelism}, Terraform at {engine.binary}"
    )
    print(f"  load + evaluate repo     {load_s:8.2f} s")
    print(f"  apply-all wall time      {apply_s:8.2f} s  ({apply_s / units:.2f} s per unit)")
    print(
        f"  terraform invocations    {engine.stats.invocations:8d}  "
        f"({engine.stats.invocations / units:.1f} per unit: init, apply, output -json)"
    )
    print(
        f"  output reads             {sum(reads.values()):8d}  "
        f"(each unit exactly once: {'yes' if once else 'NO'}; "
        f"extra reads for dependents: {len(report.output_reads)})"
    )
    print(f"  result                   {dict(report.counts)}")
    if not report.ok:
        for event in events:
            if isinstance(event, UnitFinished) and event.status != "succeeded":
                print(f"  {event.unit}: {event.message}")
    return 0 if report.ok and once else 1


if __name__ == "__main__":
    raise SystemExit(main())
