"""Fault injection: an apply-all of 36 units in 3 accounts, killed and cut off at random, resumed.

A moto server (refarch.jobs.embedded_aws.EmbeddedAws) on 127.0.0.1 holds every account's state
bucket and lock table. Terraform and refarch reach it through a small TCP proxy on 127.0.0.1
that the bench can take down: while it is down every connection is reset and new ones are
refused with a reset, then it comes back. That is the AWS backend made unavailable for a
while; moto itself keeps running, so its in-memory state survives (a restart would lose it).

Each round writes new inputs into every unit and runs `refarch apply DIR --non-interactive
--engine terraform` (the real pinned Terraform, through the CLI in a subprocess). While a run
is working (once its ledger exists), faults come at random times (seeded; the seed is printed):
  kill-refarch     SIGKILL of the refarch process
  kill-terraform   SIGKILL of one Terraform process among the refarch process's descendants
                   (found through /proc; nothing else on the machine is touched)
  backend-outage   the proxy down for a few seconds
After a run that did not succeed the bench only ever runs `refarch apply DIR --resume last`,
until the round's run completes. At the end it prints the faults injected, the runs completed,
and four figures that must all be 0: state locks stranded (DynamoDB scan), states lost (every
unit's state object in S3 with the outputs of the last round), units applied again after they
had succeeded (from the ledgers), manual steps needed (a run that failed with no fault in it,
or a round that needed anything but `--resume last`).

Then three faults of the shared ledger, its account locks and the VPN PKI (a small repo of
chained slow units in the same moto, `[ledger] backend = "dynamodb"`, two clones as two
runners), each with a figure that must be 0:
  paused run       a run SIGSTOPped past its lock expiry (60 s, the least refarch allows);
                   another runner takes the silent lock and applies; SIGCONT: the paused run
                   must start no Terraform attempt after waking (applies without a lock)
  pid namespaces   while a run holds its locks, a second runner with the same host name in
                   another pid namespace (`unshare --pid --fork`, with and without
                   `--mount-proc`; as root) must be refused, and the other way round (locks
                   stolen from live runs)
  VPN issue/revoke eight `refarch vpn client` and six `refarch vpn revoke` processes at once
                   (revocations lost: a revoked serial missing from the last CRL or the index;
                   serials lost: an issued profile whose serial the index does not hold)

    python bench/faults.py [--faults N] [--seed S] [--parallelism N] [--only random|locks]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from refarch.aws import AwsSessions  # noqa: E402
from refarch.engines.terraform import pinned_terraform_binary  # noqa: E402
from refarch.jobs.embedded_aws import EmbeddedAws  # noqa: E402
from refarch.runner.ledger import read_events, runs_dir  # noqa: E402
from refarch.settings import Settings  # noqa: E402

ACCOUNTS = {"security": "111111111111", "dev": "444444444444", "prod": "666666666666"}
TABLE = "terraform-locks"
FAKE = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
KINDS = ("kill-refarch", "kill-terraform", "backend-outage")
MAX_INVOCATIONS_PER_ROUND = 80

ROOT_HCL = """# bench: each unit's state in its account's bucket (credentials from the runner)
locals {
  acct   = read_terragrunt_config(find_in_parent_folders("account.hcl")).locals
  region = read_terragrunt_config(find_in_parent_folders("region.hcl")).locals.aws_region
}
remote_state {
  backend = "s3"
  config = {
    bucket = "faults-${local.acct.account_name}-state"
    key = "${path_relative_to_include()}/terraform.tfstate"
    region = "us-east-1"
    dynamodb_table = "terraform-locks"
  }
}
"""

# Per account: (unit, module, upstream unit or None); 12 units, 36 in all.
LAYOUT = (
    ("us-east-1/base", "echo", None),
    ("us-east-1/net", "echo", "../base"),
    ("us-east-1/slow-a", "slow", "../net"),
    ("us-east-1/slow-b", "slow", "../net"),
    ("us-east-1/slow-c", "slow", "../net"),
    ("us-east-1/data", "echo", "../net"),
    ("us-east-1/app", "echo", "../data"),
    ("us-east-1/slow-d", "slow", None),
    ("us-west-2/base", "echo", "../../us-east-1/base"),
    ("us-west-2/app", "echo", "../base"),
    ("us-west-2/slow-e", "slow", "../base"),
    ("us-west-2/slow-f", "slow", None),
)


# -- the live repo ---------------------------------------------------------------------------
def slow_size(unit: str, round_number: int) -> int:
    return 200 + 10 * round_number + sum(map(ord, unit)) % 40


def unit_text(account: str, unit: str, module: str, upstream: str | None, round_number: int) -> str:
    lines = [
        'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}',
        f'terraform {{\n  source = "../../../../modules//{module}"\n}}',
    ]
    if account != "security" and unit == "us-east-1/base":
        upstream = "../../../security/us-east-1/base"  # cross-account, an earlier tier
    if upstream is not None:
        lines.append(
            f'dependency "up" {{\n  config_path = "{upstream}"\n  mock_outputs = {{ greeting = "mock" }}\n}}'
        )
    if module == "slow":
        lines.append(f"inputs = {{\n  size = {slow_size(unit, round_number)}\n}}")
    else:
        upstream_greeting = "${dependency.up.outputs.greeting}" if upstream else "none"
        lines.append(
            f'inputs = {{\n  name = "{account}/{unit} r{round_number} after {upstream_greeting}"\n'
            f'  tags = {{ round = "{round_number}" }}\n}}'
        )
    return "\n\n".join(lines) + "\n"


def write_repo(base: Path, terraform: str) -> Path:
    live = base / "live"
    shutil.copytree(ROOT / "tests" / "fixtures" / "modules", base / "modules")
    live.mkdir()
    (live / "root.hcl").write_text(ROOT_HCL)
    (live / "refarch.toml").write_text(f'[engine]\nterraform_binary = "{terraform}"\n')
    for account, account_id in ACCOUNTS.items():
        (live / account).mkdir()
        (live / account / "account.hcl").write_text(
            f'locals {{\n  account_name = "{account}"\n  aws_account_id = "{account_id}"\n}}\n'
        )
        for unit, _, _ in LAYOUT:
            folder = live / account / unit
            folder.mkdir(parents=True)
            region = folder.parent / "region.hcl"
            if not region.exists():
                region.write_text(f'locals {{\n  aws_region = "{folder.parent.name}"\n}}\n')
    return live


def write_round(live: Path, round_number: int) -> None:
    for account in ACCOUNTS:
        for unit, module, upstream in LAYOUT:
            text = unit_text(account, unit, module, upstream, round_number)
            (live / account / unit / "terragrunt.hcl").write_text(text)


def unit_paths() -> list[str]:
    return [f"{account}/{unit}" for account in ACCOUNTS for unit, _, _ in LAYOUT]


# -- the AWS backend, and a proxy that can be taken down -------------------------------------
class Proxy:
    """A TCP proxy on 127.0.0.1 in front of moto. `down()` resets every open connection and
    every new one until `up()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.available = threading.Event()
        self.available.set()
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        self.available.clear()
        with self.lock:
            for sock in list(self.open):
                _reset(sock)
            self.open.clear()

    def up(self) -> None:
        self.available.set()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if not self.available.is_set():
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self.lock:
                self.open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        pair = {client: server, server: client}
        try:
            while self.available.is_set():
                readable, _, _ = select.select(list(pair), [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self.lock:
                self.open.discard(client)
                self.open.discard(server)
            for sock in (client, server):
                _reset(sock)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a dropped network path or a dead peer does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()


def sessions_for(endpoint: str) -> AwsSessions:
    base = boto3.Session(
        aws_access_key_id=FAKE["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    return AwsSessions(Settings(endpoint_url=endpoint, region="us-east-1"), base_session=base)


def client(sessions: AwsSessions, service: str, account: str) -> Any:
    return sessions.client(service, ACCOUNTS[account], "us-east-1", account_name=account)


def make_backends(sessions: AwsSessions) -> None:
    for account in ACCOUNTS:
        client(sessions, "s3", account).create_bucket(Bucket=f"faults-{account}-state")
        client(sessions, "dynamodb", account).create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        )


def held_locks(sessions: AwsSessions) -> list[str]:
    found = []
    for account in ACCOUNTS:
        items = client(sessions, "dynamodb", account).scan(TableName=TABLE)["Items"]
        found += [i["LockID"]["S"] for i in items if not i["LockID"]["S"].endswith("-md5")]
    return sorted(found)


def lost_states(sessions: AwsSessions, round_number: int) -> list[str]:
    """Units whose state object is missing or does not hold the last round's outputs."""
    lost = []
    for path in unit_paths():
        account, unit = path.split("/", 1)
        module = next(m for u, m, _ in LAYOUT if u == unit)
        try:
            body = client(sessions, "s3", account).get_object(
                Bucket=f"faults-{account}-state", Key=f"{path}/terraform.tfstate"
            )["Body"]
            outputs = json.loads(body.read())["outputs"]
        except Exception as exc:  # reported as lost, with why
            lost.append(f"{path}: {type(exc).__name__}")
            continue
        if module == "slow":
            size = slow_size(unit, round_number)
            expected = sum(i * j for i in range(size) for j in range(size))
            ok = outputs.get("work", {}).get("value") == expected
        else:
            details = outputs.get("details", {}).get("value", {})
            ok = (
                details.get("tags", {}).get("round") == str(round_number)
                and outputs.get("greeting", {}).get("value") == f"hello {details.get('name')}"
            )
        if not ok:
            lost.append(f"{path}: outputs of another round")
    return lost


# -- processes -------------------------------------------------------------------------------
def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def is_terraform(pid: int, binary: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe") == os.path.realpath(binary)
    except OSError:
        return False


def terraforms_in(folder: Path, binary: str) -> list[int]:
    """Terraform processes working in `folder` (orphans of a killed refarch, still stopping)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and is_terraform(int(entry.name), binary):
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / "cwd")).is_relative_to(folder):
                    found.append(int(entry.name))
    return found


def runner_env(tmp: Path, endpoint: str) -> dict[str, str]:
    """The environment of a refarch process the bench starts: fake credentials, moto only."""
    quiet = dict.fromkeys(("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"), os.devnull)
    region = dict.fromkeys(("AWS_REGION", "AWS_DEFAULT_REGION"), "us-east-1")
    where = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "PYTHONPATH": str(ROOT)}
    return {**where, **FAKE, **region, **quiet, "AWS_ENDPOINT_URL": endpoint, "CI": "true"}


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, proxy: Proxy, direct: AwsSessions) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmp = tmp
        self.proxy = proxy
        self.direct = direct
        self.terraform = pinned_terraform_binary() or "terraform"
        self.live = write_repo(tmp, self.terraform)
        self.faults: Counter[str] = Counter()
        self.completed = 0
        self.manual: list[str] = []
        self.chains: list[list[str]] = []  # per round: its run ids, in order
        self.invocations = 0
        self.env = runner_env(tmp, proxy.endpoint_url)

    def runs(self) -> set[str]:
        folder = runs_dir(self.live)
        return {p.stem for p in folder.glob("*.jsonl")} if folder.is_dir() else set()

    def refarch(self, *extra: str) -> tuple[int, str, list[str], int]:
        """One `refarch apply`, with faults while it works: (exit code, output, new run ids,
        faults injected)."""
        before = self.runs()
        self.invocations += 1
        log = self.tmp / f"invocation-{self.invocations}.log"
        argv = [sys.executable, "-c", "from refarch.cli import main; main()", "apply", str(self.live)]
        argv += ["--non-interactive", "--engine", "terraform", "-j", str(self.args.parallelism), *extra]
        with log.open("w") as out:
            process = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
            injected = 0
            next_fault: float | None = None
            while process.poll() is None:
                now = time.monotonic()
                if next_fault is None and self.runs() - before:  # the run has begun
                    next_fault = now + self.rng.uniform(1.0, 8.0)
                if self.budget() and next_fault is not None and now >= next_fault:
                    if self.inject(process):
                        injected += 1
                    next_fault = time.monotonic() + self.rng.uniform(3.0, 10.0)
                time.sleep(0.05)
        self.proxy.up()
        return process.returncode, log.read_text(errors="replace"), sorted(self.runs() - before), injected

    def budget(self) -> bool:
        return sum(self.faults.values()) < int(self.args.faults)

    def inject(self, process: subprocess.Popen[bytes]) -> bool:
        kind = self.rng.choice(KINDS)
        if kind == "kill-refarch":
            process.send_signal(signal.SIGKILL)
        elif kind == "kill-terraform":
            deadline = time.monotonic() + 5
            while True:
                found = [p for p in descendants(process.pid) if is_terraform(p, self.terraform)]
                if found:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.rng.choice(found), signal.SIGKILL)
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
        else:
            self.proxy.down()
            time.sleep(self.rng.uniform(3.0, 12.0))
            self.proxy.up()
        self.faults[kind] += 1
        print(f"    fault {sum(self.faults.values()):2d}: {kind}", flush=True)
        return True

    def round(self, number: int) -> None:
        write_round(self.live, number)
        chain: list[str] = []
        self.chains.append(chain)
        extra: tuple[str, ...] = ()
        for _ in range(MAX_INVOCATIONS_PER_ROUND):
            code, output, new, injected = self.refarch(*extra)
            chain += new
            summary = output.strip().splitlines()[-1:] or ["(no output)"]
            print(f"  {' '.join(extra) or 'apply':14s} exit {code:3d}, faults {injected}: {summary[0][:90]}")
            if code == 0:
                self.completed += 1
                return
            if injected == 0:
                self.manual_step(output, code)
            if not new and not chain:  # killed before its ledger existed: nothing to resume yet
                extra = ()
                continue
            extra = ("--resume", "last")
        self.manual.append(f"round {number}: not complete after {MAX_INVOCATIONS_PER_ROUND} runs")

    def manual_step(self, output: str, code: int) -> None:
        """A run that failed with no fault in it: what would a user have to do by hand?"""
        tail = "\n".join(output.strip().splitlines()[-25:])
        self.manual.append(f"exit {code} with no fault injected:\n{tail}")
        print("    MANUAL STEP NEEDED: a run failed with no fault injected; its output ends:")
        print("      " + tail.replace("\n", "\n      "))

    def reapplied_after_success(self) -> list[str]:
        """Units that a resume started again after an earlier run of the same round had
        recorded their success."""
        found = []
        for chain in self.chains:
            succeeded: set[str] = set()
            for run_id in chain:
                events = read_events(runs_dir(self.live) / f"{run_id}.jsonl")
                for event in events:
                    if event.get("event") == "unit_start" and event.get("unit") in succeeded:
                        found.append(f"{event['unit']} in {run_id}")
                for event in events:
                    if event.get("event") == "unit_finish" and event.get("status") == "succeeded":
                        succeeded.add(str(event["unit"]))
        return found

    def recoveries(self) -> Counter[str]:
        """What refarch did by itself on the way, from every ledger: states moved aside and
        pushed back, state locks released."""
        wanted = (
            "state_rescued",
            "state_pushed",
            "lock_released",
            "lock_release_failed",
            "waiting_for_leftovers",
        )
        seen: Counter[str] = Counter()
        for ledger in sorted(runs_dir(self.live).glob("*.jsonl")):
            seen.update(e["event"] for e in read_events(ledger) if e.get("event") in wanted)
        return seen

    def settle(self) -> None:
        """Let the Terraform processes of killed runs finish stopping (they hold their lock
        until then), at most a minute."""
        deadline = time.monotonic() + 60
        while terraforms_in(self.tmp, self.terraform) and time.monotonic() < deadline:
            time.sleep(0.2)


# -- the shared ledger's locks and the VPN PKI ------------------------------------------------
LOCK_EXPIRY = 60  # the least [ledger] lock_expiry refarch accepts
LOCK_UNITS = ("dev/us-east-1/lock-1", "dev/us-east-1/lock-2", "dev/us-east-1/lock-3", "dev/us-east-1/lock-4")
LEDGER_TABLE = "refarch-ledger"


def write_lock_repo(base: Path, terraform: str) -> Path:
    """A repo of four chained slow units in dev, which holds the shared ledger and the VPN PKI."""
    live = base / "live"
    shutil.copytree(ROOT / "tests" / "fixtures" / "modules", base / "modules", dirs_exist_ok=True)
    live.mkdir(parents=True)
    (live / "root.hcl").write_text(ROOT_HCL)
    (live / "refarch.toml").write_text(
        f'[engine]\nterraform_binary = "{terraform}"\n\n'
        '[ledger]\nbackend = "dynamodb"\naccount = "dev"\nrepo = "bench/locks"\n'
        f"lock_expiry = {LOCK_EXPIRY}\n\n"
        '[vpn]\naccount = "dev"\nremote = "vpn.bench.example"\n'
    )
    for account in ("dev",):
        (live / account / "us-east-1").mkdir(parents=True)
        (live / account / "account.hcl").write_text(
            f'locals {{\n  account_name = "{account}"\n  aws_account_id = "{ACCOUNTS[account]}"\n}}\n'
        )
        (live / account / "us-east-1" / "region.hcl").write_text('locals {\n  aws_region = "us-east-1"\n}\n')
    previous = None
    for number, path in enumerate(LOCK_UNITS, start=1):
        folder = live / path
        folder.mkdir(parents=True)
        lines = [
            'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}',
            'terraform {\n  source = "../../../../modules//slow"\n}',
            f"inputs = {{\n  size = {260 + number}\n}}",
        ]
        if previous:
            lines.insert(2, f'dependencies {{\n  paths = ["../{previous}"]\n}}')
        folder.joinpath("terragrunt.hcl").write_text("\n\n".join(lines) + "\n")
        previous = folder.name
    return live


class LockBench:
    """The lock and PKI faults: two clones of one small repo, the shared ledger in moto."""

    def __init__(self, tmp: Path, endpoint: str, direct: AwsSessions) -> None:
        self.tmp = tmp
        self.direct = direct
        self.terraform = pinned_terraform_binary() or "terraform"
        self.clones = [write_lock_repo(tmp / f"runner-{n}", self.terraform) for n in (1, 2)]
        self.env = runner_env(tmp, endpoint)
        self.stolen: list[str] = []  # locks a runner took while their holder was alive
        self.unlocked: list[str] = []  # Terraform attempts of a run that no longer held its lock
        self.notes: list[str] = []
        self.logs: dict[int, Path] = {}  # background applies: pid -> output file
        from refarch.provision.backend import BucketSpec  # noqa: PLC0415 - only this part needs it
        from refarch.provision.ledger_table import ensure_ledger  # noqa: PLC0415

        ensure_ledger(
            client(direct, "dynamodb", "dev"),
            client(direct, "s3", "dev"),
            table=LEDGER_TABLE,
            bucket=BucketSpec("bench-locks-ledger", "us-east-1", ACCOUNTS["dev"], enforce_tls=False),
            wait_delay=0,
        )

    def argv(self, clone: int, *args: str, prefix: tuple[str, ...] = ()) -> list[str]:
        main = [sys.executable, "-c", "from refarch.cli import main; main()"]
        return [*prefix, *main, *args[:1], str(self.clones[clone]), *args[1:]]

    def apply(self, clone: int, prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
        """`refarch apply` of one clone in the background, its output in a file (a pipe
        nobody reads while it is paused could fill)."""
        argv = self.argv(
            clone, "apply", "--non-interactive", "--engine", "terraform", "-j", "1", prefix=prefix
        )
        log = self.tmp / f"apply-{len(self.logs) + 1}.log"
        with log.open("w") as out:
            process = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True)
        self.logs[process.pid] = log
        return process

    def finish(self, process: subprocess.Popen[str]) -> str:
        """Wait for a background apply: its output."""
        process.wait(timeout=600)
        return self.logs[process.pid].read_text(errors="replace")

    def ledgers(self, clone: int) -> list[Path]:
        folder = runs_dir(self.clones[clone])
        return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []

    def wait_for_unit_start(
        self, clone: int, process: subprocess.Popen[str], since: set[Path]
    ) -> Path | None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            for ledger in set(self.ledgers(clone)) - since:
                if any(e.get("event") == "attempt" for e in read_events(ledger)):
                    return ledger
            time.sleep(0.1)
        return None

    def paused_run(self) -> None:
        """A run stopped past its lock expiry; another runner applies; the first wakes up."""
        before = set(self.ledgers(0))
        first = self.apply(0)
        ledger = self.wait_for_unit_start(0, first, before)
        if ledger is None:
            self.notes.append(f"paused run: the first run never started a unit: {self.finish(first)[-500:]}")
            return
        first.send_signal(signal.SIGSTOP)
        print(f"  paused run: SIGSTOP, waiting {LOCK_EXPIRY + 5} s (past the lock expiry)", flush=True)
        time.sleep(LOCK_EXPIRY + 5)
        second = self.apply(1)
        out = self.finish(second)
        print(f"  paused run: the other runner exit {second.returncode}: {out.strip().splitlines()[-1][:90]}")
        woke = time.time()
        first.send_signal(signal.SIGCONT)
        out = self.finish(first)
        print(f"  paused run: woken, exit {first.returncode}: {out.strip().splitlines()[-1][:90]}")
        events = read_events(ledger)
        late = [e for e in events if e.get("event") == "attempt" and float(e.get("ts", 0)) > woke]
        self.unlocked += [f"paused run: {e.get('unit')} after waking" for e in late]
        said = [e["event"] for e in events if e["event"] in ("account_lock_lost", "heartbeat_failed")]
        print(f"  paused run: the woken run's ledger says {sorted(set(said)) or 'nothing about its lock'}")

    def pid_namespaces(self) -> None:
        """Same host name, other pid namespaces: a live holder is never judged by its pid."""
        unshare = shutil.which("unshare")
        if os.geteuid() != 0 or unshare is None:
            self.notes.append("pid namespaces: skipped (needs root and unshare)")
            return
        cases = (
            ("holder here, runner in a new pid namespace", (), (unshare, "--pid", "--fork")),
            (
                "holder here, runner in a new pid namespace with its own /proc",
                (),
                (unshare, "--pid", "--fork", "--mount-proc"),
            ),
            (
                "holder in a new pid namespace with its own /proc, runner here",
                (unshare, "--pid", "--fork", "--mount-proc"),
                (),
            ),
        )
        for name, holder_prefix, runner_prefix in cases:
            before = set(self.ledgers(0))
            holder = self.apply(0, holder_prefix)
            if self.wait_for_unit_start(0, holder, before) is None:
                self.notes.append(
                    f"pid namespaces ({name}): the holder never started: {self.finish(holder)[-300:]}"
                )
                continue
            argv = self.argv(1, "apply", "--non-interactive", "--engine", "terraform", prefix=runner_prefix)
            runner = subprocess.run(
                argv, env=self.env, capture_output=True, text=True, timeout=600, check=False
            )
            refused = runner.returncode == 2 and "is being changed by another refarch run" in runner.stderr
            if not refused:
                self.stolen.append(f"{name}: exit {runner.returncode}")
            out = self.finish(holder)
            verdict = "refused" if refused else "TOOK THE LOCK"
            print(f"  pid namespaces, {name}: second runner {verdict}, holder exit {holder.returncode}")
            if holder.returncode != 0:
                self.notes.append(f"pid namespaces ({name}): the holder failed: {out[-300:]}")

    def vpn(self) -> tuple[int, int]:
        """Concurrent issue and revoke through the CLI: (revocations lost, serials lost)."""
        from cryptography import x509  # noqa: PLC0415 - only this part needs it

        from refarch.provision.vpn_pki import ensure_vpn_pki  # noqa: PLC0415
        from refarch.settings import load_settings  # noqa: PLC0415

        live = self.clones[0]
        settings = load_settings(live, {"AWS_ENDPOINT_URL": self.env["AWS_ENDPOINT_URL"]})
        secrets = client(self.direct, "secretsmanager", "dev")
        ensure_vpn_pki(
            secrets,
            client(self.direct, "kms", "dev"),
            settings.vpn,
            account_id=ACCOUNTS["dev"],
            region="us-east-1",
        )
        profiles = self.tmp / "profiles"
        profiles.mkdir()

        def cli(verb: str, name: str, *more: str) -> subprocess.Popen[str]:  # refarch vpn VERB NAME DIR
            argv = [
                sys.executable,
                "-c",
                "from refarch.cli import main; main()",
                "vpn",
                verb,
                name,
                str(live),
                *more,
            ]
            return subprocess.Popen(
                argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )

        doomed = [f"old-{n}" for n in range(6)]
        for name in doomed:
            cli("client", name, "--out", str(profiles / f"{name}.ovpn")).communicate(timeout=300)
        fresh = [f"new-{n}" for n in range(8)]
        started = [cli("revoke", name) for name in doomed]
        started += [cli("client", name, "--out", str(profiles / f"{name}.ovpn")) for name in fresh]
        failed = [p.communicate(timeout=300)[0][-200:] for p in started if p.wait() != 0]
        if failed:
            self.notes.append(f"vpn: {len(failed)} command(s) failed: {failed[:2]}")

        def serial(name: str) -> str:
            text = (profiles / f"{name}.ovpn").read_text()
            pem = text.split("<cert>\n", 1)[1].split("</cert>", 1)[0]
            return format(x509.load_pem_x509_certificate(pem.encode()).serial_number, "x")

        def current(name: str) -> str:
            return str(secrets.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])

        index = json.loads(current(settings.vpn.secret("clients")))
        crl = x509.load_pem_x509_crl(current(settings.vpn.secret("crl")).encode())
        listed = {format(r.serial_number, "x") for r in crl}
        revocations_lost = sum(
            1
            for name in doomed
            if serial(name) not in listed
            or index.get(name, {}).get("serial")
            or serial(name) not in {r["serial"] for r in index.get(name, {}).get("revoked", [])}
        )
        serials_lost = sum(1 for name in fresh if index.get(name, {}).get("serial") != serial(name))
        print(
            f"  vpn: {len(doomed)} revoked and {len(fresh)} issued at once, {len(failed)} command(s) failed"
        )
        return revocations_lost, serials_lost


def lock_faults(aws: EmbeddedAws, tmp: Path) -> bool:
    """The lock and PKI faults (see the module's docstring); prints the figures. True: all 0."""
    started = time.monotonic()
    direct = sessions_for(aws.endpoint_url)
    with contextlib.suppress(Exception):  # made already when the random faults ran first
        make_backends(direct)
    bench = LockBench(tmp / "locks", aws.endpoint_url, direct)
    print("paused run past its lock expiry", flush=True)
    bench.paused_run()
    print("two runners, one host name, separate pid namespaces", flush=True)
    bench.pid_namespaces()
    print("concurrent VPN issue and revoke", flush=True)
    revocations_lost, serials_lost = bench.vpn()
    print()
    print(f"locks stolen from live runs {len(bench.stolen):3d}  {bench.stolen[:3] if bench.stolen else ''}")
    unlocked = bench.unlocked
    print(f"applies without a lock      {len(unlocked):3d}  {unlocked[:3] if unlocked else ''}")
    print(f"revocations lost            {revocations_lost:3d}")
    print(f"serials lost                {serials_lost:3d}")
    for note in bench.notes:
        print(f"note: {note}")
    print(f"wall time                  {time.monotonic() - started:7.1f} s")
    return not (bench.stolen or bench.unlocked or revocations_lost or serials_lost)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--only", choices=("random", "locks"), default=None)
    args = parser.parse_args()
    if args.only == "locks":
        if pinned_terraform_binary() is None:
            print("bench/faults.py needs the pinned Terraform of the [demo] extra (make setup)")
            return 1
        with EmbeddedAws() as aws, tempfile.TemporaryDirectory(prefix="refarch-faults-") as tmp:
            return 0 if lock_faults(aws, Path(tmp)) else 1
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    if pinned_terraform_binary() is None:
        print("bench/faults.py needs the pinned Terraform of the [demo] extra (make setup)")
        return 1
    print(f"fault bench: {len(unit_paths())} units in {len(ACCOUNTS)} accounts, seed {args.seed}", flush=True)
    started = time.monotonic()
    with EmbeddedAws() as aws, tempfile.TemporaryDirectory(prefix="refarch-faults-") as tmp:
        host, port = aws.endpoint_url.removeprefix("http://").rsplit(":", 1)
        proxy = Proxy((host, int(port)))
        direct = sessions_for(aws.endpoint_url)
        make_backends(direct)
        bench = Bench(args, Path(tmp), proxy, direct)
        number = 0
        while bench.budget() or number == 0:
            number += 1
            print(f"round {number} (faults so far: {sum(bench.faults.values())})", flush=True)
            bench.round(number)
        bench.settle()
        locks = held_locks(direct)
        lost = lost_states(direct, number)
        again = bench.reapplied_after_success()
        print()
        kinds = dict(sorted(bench.faults.items()))
        print(f"faults injected            {sum(bench.faults.values()):4d}  {kinds}")
        print(f"runs completed             {bench.completed:4d}  ({number} rounds, {bench.invocations} runs)")
        print(f"locks stranded             {len(locks):4d}  {locks[:5] if locks else ''}")
        print(f"states lost                {len(lost):4d}  {lost[:5] if lost else ''}")
        print(f"applied again after success {len(again):3d}  {again[:5] if again else ''}")
        print(f"manual steps needed        {len(bench.manual):4d}")
        done = bench.recoveries()
        print(
            f"refarch by itself: {done['state_rescued']} states moved aside, {done['state_pushed']} pushed "
            f"back by --resume, {done['lock_released']} state locks released "
            f"({done['lock_release_failed']} releases failed), waited {done['waiting_for_leftovers']} times "
            "for a dead run's Terraform to stop"
        )
        print(f"wall time                  {time.monotonic() - started:7.1f} s")
        bad = locks or lost or again or bench.manual or bench.completed != number
        if args.only != "random":
            print()
            bad = not lock_faults(aws, Path(tmp)) or bad
        return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
