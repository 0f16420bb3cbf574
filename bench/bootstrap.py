"""Bootstrap of 5 accounts x 2 regions against a moto server: cold run, then a second run.

Prints wall time and AWS calls (all, and mutating) per run. Figures only: nothing asserted.
Run: .venv/bin/python bench/bootstrap.py
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Fake credentials only: this benchmark talks to a local moto server, never to AWS.
for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(name, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106
    AWS_DEFAULT_REGION="us-east-1",
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
)

from moto.server import ThreadedMotoServer  # noqa: E402

from refarch.aws import AwsSessions  # noqa: E402
from refarch.config import load_repo  # noqa: E402
from refarch.jobs.bootstrap import bootstrap  # noqa: E402
from refarch.provision import is_mutating  # noqa: E402
from refarch.settings import load_settings  # noqa: E402

ACCOUNTS = {
    "security": "111111111111",
    "shared-services": "222222222222",
    "dev": "444444444444",
    "stage": "555555555555",
    "prod": "666666666666",
}
REGIONS = ("us-east-1", "eu-west-1")
UNIT = 'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}\n'
SETTINGS = """
[certificates]
internal = ["app.internal.acme.local"]

[secrets]
passwords = ["db_password"]
"""


def make_repo(root: Path) -> None:
    """A live repo: every account has a vpc and an app unit in both regions."""
    shutil.copy(ROOT / "tests" / "fixtures" / "live" / "root.hcl", root / "root.hcl")
    (root / "refarch.toml").write_text(SETTINGS, encoding="utf-8")
    for name, account_id in ACCOUNTS.items():
        (root / name).mkdir()
        (root / name / "account.hcl").write_text(
            f'locals {{\n  account_name = "{name}"\n  aws_account_id = "{account_id}"\n}}\n', encoding="utf-8"
        )
        for region in REGIONS:
            folder = root / name / region
            folder.mkdir()
            (folder / "region.hcl").write_text(
                f'locals {{\n  aws_region = "{region}"\n}}\n', encoding="utf-8"
            )
            for unit in ("vpc", "app"):
                (folder / unit).mkdir()
                (folder / unit / "terragrunt.hcl").write_text(UNIT, encoding="utf-8")


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request in the figures
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_repo(root)
            settings = load_settings(root, {"AWS_ENDPOINT_URL": f"http://{host}:{port}"})
            repo = load_repo(root, settings=settings, cache=False)
            print(f"bootstrap: {len(ACCOUNTS)} accounts x {len(REGIONS)} regions, moto server")
            for label in ("cold", "second"):
                calls: Counter[tuple[str, str]] = Counter()
                sessions = AwsSessions(settings, on_call=lambda s, o, c=calls: c.update([(s, o)]))
                started = time.perf_counter()
                record = bootstrap(repo, settings, sessions=sessions)
                wall = time.perf_counter() - started
                mutating = sum(n for (s, o), n in calls.items() if is_mutating(s, o))
                print(
                    f"  {label:6} run: {wall:6.2f} s wall, {sum(calls.values()):4d} AWS calls "
                    f"({mutating} mutating), {len(record.changes)} changes"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
