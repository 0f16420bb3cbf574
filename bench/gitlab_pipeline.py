"""The pipeline `refarch ci gitlab` emits, run end to end by a real GitLab runner: gitlab-ci-local
(npm, `make setup` puts it in .tools/) with the shell executor, each job in its own copy of
the repo (`--shell-isolation`), against one moto server, with the shared DynamoDB ledger.

The jobs install refarch the way `[ci] install` says (a wheel committed in the repo, checked
against its SHA256, never PyPI) and Terraform 1.0.3 from a local mirror, checked against the
sum pinned in the emitted file. The live repo is `refarch new --flavour demo` (provider-less
modules), its pipeline emitted for what the scenarios need (`refarch ci --include`) so that it
fits its time budget on a loaded machine: no unit that needs an AMI Packer builds, no
dependency steps (tests/unit/test_ci.py checks those): 5 units in 4 accounts, 8 jobs. Scenarios, in order:

1. clean: every job in `needs:` order; apply-prod waits for a person (`when: manual`);
   prod's unit is changed after its plan was reviewed: apply-prod refuses it; the change is
   reverted and apply-prod approved: exactly the reviewed plan is applied;
2. rerun: nothing changed since the last deployment: nothing is applied;
3. one module changed (vpc): only the jobs of the accounts that use it apply;
4. the modules of shared-services' two units changed; apply-shared-services' process tree is
   SIGKILLed after its first unit applied; the job is retried (same pipeline, same job name,
   new job id) and finishes on its own: no unlock, no wait for the lock to expire.

Prints the figures: jobs, applies per unit, wall time per scenario, seconds from retry to
green, manual steps (approvals and retries only).

    python bench/gitlab_pipeline.py
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

from apply_terraform import FAKE  # noqa: E402
from fanout import base_env  # noqa: E402

from refarch.engines.terraform import pinned_terraform_binary  # noqa: E402
from refarch.jobs.demo import ACCOUNTS  # noqa: E402
from refarch.runner.saved_plans import NOTHING_TO_APPLY  # noqa: E402

REFARCH = [sys.executable, "-c", "from refarch.cli import main; main()"]
NOT_GITLAB = ("PATH", "PYTHONPATH", "TG_TF_PATH", "XDG_CONFIG_HOME", "CI", "GITHUB_ACTIONS", "GITHUB_ACTOR")
NOT_GITLAB += ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY")
GIT_ID = (("NAME", "ci"), ("EMAIL", "ci@example.com"))
# They reference AMIs that Packer builds (tests/e2e/test_demo.py covers them), or make the
# dependency steps that cost jobs (the unit tests cover those).
INCLUDE = (  # the scenarios' units: every other unit of the rendered repo is left out
    "security/us-east-1/iam-groups",
    "shared-services/us-east-1/ecr",
    "shared-services/us-east-1/vpc",
    "dev/us-east-1/vpc",
    "prod/us-east-1/vpc",
)
LEDGER_REPO = "gitlab.example/acme/live"
TABLE = "refarch-ledger"
WHEEL_DIR = "ci"
GITIGNORE = (
    ".refarch/\n.refarch-tools/\n.refarch-cache/\n.gitlab-ci-local/\nrefarch-plans/\nrefarch-reports/\n"
)


def gitlab_ci_local() -> str | None:
    """gitlab-ci-local from .tools/ (`make setup`), else PATH."""
    local = ROOT / ".tools" / "node_modules" / ".bin" / "gitlab-ci-local"
    return str(local) if local.is_file() else shutil.which("gitlab-ci-local")


def missing() -> str | None:
    """Why the pipeline cannot run here, or None."""
    if gitlab_ci_local() is None:
        return "gitlab-ci-local is not installed (`make setup` puts it in .tools/)"
    if shutil.which("rsync") is None:
        return "rsync is missing (gitlab-ci-local --shell-isolation copies the repo with it)"
    if pinned_terraform_binary() is None:
        return "Terraform 1.0.3 is not installed (the [demo] extra)"
    return None


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def git(cwd: Path, *args: str) -> None:
    run(["git", *args], cwd, dict(os.environ))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class Mirror:
    """releases.hashicorp.com for the jobs, on 127.0.0.1: Terraform 1.0.3's zip."""

    def __init__(self, folder: Path) -> None:
        binary = pinned_terraform_binary()
        assert binary is not None
        release = folder / "1.0.3"
        release.mkdir(parents=True)
        self.zip = release / "terraform_1.0.3_linux_amd64.zip"
        with zipfile.ZipFile(self.zip, "w", zipfile.ZIP_STORED) as archive:
            archive.write(binary, "terraform")
        handler = partial(_QuietHandler, directory=str(folder))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def runner_python(tmp: Path) -> Path:
    """The runner's Python: a fresh venv with refarch's dependencies (linked from this one,
    so nothing is downloaded) and without refarch: the jobs install it from the wheel."""
    venv = tmp / "runner-venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, capture_output=True)  # type: ignore[attr-defined]
    deps = tmp / "runner-deps"
    deps.mkdir()
    site = Path(next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()))
    for entry in site.iterdir():
        if not entry.name.lower().startswith(("refarch", "_editable_impl_refarch", "__editable__")):
            (deps / entry.name).symlink_to(entry)
    (target,) = (venv / "lib").glob("python3*/site-packages")
    (target / "runner-deps.pth").write_text(f"{deps}\n")
    return venv / "bin"


def build_wheel(out: Path) -> Path:
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        ROOT,
        dict(os.environ),
    )
    (wheel,) = out.glob("refarch-*.whl")
    return wheel


class Pipeline:
    """The origin repo, the runner's environment, and gitlab-ci-local runs on it."""

    def __init__(self, tmp: Path, endpoint: str) -> None:
        self.tmp = tmp
        self.endpoint = endpoint
        self.origin = tmp / "origin"
        self.origin.mkdir()
        self.mirror = Mirror(tmp / "mirror")
        home = tmp / "home"
        home.mkdir()
        # fan-out's runner environment (fake keys, the moto endpoint, HOME), without GitHub's
        aws = {k: v for k, v in base_env(home, endpoint).items() if k not in NOT_GITLAB}
        aws.update({f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER") for what, value in GIT_ID})
        self.tool_env = {**aws, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
        bin_dir = runner_python(tmp)
        # the runner: its Python first, no refarch on PATH, no PYTHONPATH; the jobs put
        # Terraform 1.0.3 (the mirror's) in front of whatever else PATH has
        self.runner_env = {**aws, "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"}
        self.manual_steps = 0
        self._setup()

    def refarch(self, *args: str) -> str:
        return run([*REFARCH, *args], self.origin, self.tool_env)

    def _setup(self) -> None:
        wheel = build_wheel(self.tmp / "dist")
        (self.origin / WHEEL_DIR).mkdir()
        shutil.copy(wheel, self.origin / WHEEL_DIR / wheel.name)
        accounts = ",".join(f"{k}={v}" for k, v in ACCOUNTS.items())
        self.refarch(
            "new", "live", "--org", "acme", "--flavour", "demo", "--regions", "us-east-1",
            "--accounts", accounts,
            "--ci-install", f"{WHEEL_DIR}/{wheel.name}", "--ci-install-sha256", sha256(wheel),
        )  # fmt: skip
        toml = self.origin / "live" / "refarch.toml"
        text = toml.read_text()
        # [ci] is the last table `refarch new` writes: the mirror's URL and its zip's sum
        # (the real release's sum is refarch's pin; this zip is the wrapper's binary, re-zipped)
        text += (
            f'terraform_mirror = "{self.mirror.url}"\n'
            f'terraform_sha256 = "{sha256(self.mirror.zip)}"\n'
            'approval = ["prod"]\n'
            f'\n[ledger]\nbackend = "dynamodb"\nrepo = "{LEDGER_REPO}"\n'
        )
        toml.write_text(text)
        (self.origin / ".gitignore").write_text(GITIGNORE)
        git(self.origin, "init", "-q", "-b", "main")
        self.refarch("bootstrap", "live", "--only", "backend,ledger")
        includes = [a for unit in INCLUDE for a in ("--include", unit)]
        # -j 1: a job applies its units one after the other, so the kill lands between two units
        self.refarch("ci", "gitlab", "live", "-j", "1", *includes)
        self.commit("the live repo and its pipeline")

    def commit(self, message: str) -> None:
        git(self.origin, "add", "-A")
        subprocess.run(
            ["git", "commit", "-qm", message],
            cwd=self.origin,
            env={**os.environ, **self.tool_env},
            check=True,
        )

    def gitlab(self, *args: str, kill_after_first_apply: str | None = None) -> tuple[int, str, float]:
        """One gitlab-ci-local run: (exit code, output, seconds). With `kill_after_first_apply`,
        that job's process tree is SIGKILLed once its run applied a unit (as a runner dies)."""
        gcl = gitlab_ci_local()
        assert gcl is not None
        argv = [gcl, "--shell-isolation", "--force-shell-executor", "--no-artifacts-to-source", *args]
        started = time.perf_counter()
        log = (self.tmp / f"gcl-{time.monotonic_ns()}.log").open("w+")
        process = subprocess.Popen(
            argv, cwd=self.origin, env=self.runner_env, stdout=log, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        killed = None
        try:
            if kill_after_first_apply:
                killed = self._kill_when_applied(process, kill_after_first_apply)
            code = process.wait(timeout=400)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        log.seek(0)
        output = log.read()
        if kill_after_first_apply and not killed:
            raise AssertionError(f"job {kill_after_first_apply} never applied a unit:\n{output[-6000:]}")
        return code, output, time.perf_counter() - started

    def _kill_when_applied(self, process: subprocess.Popen[str], job: str) -> list[int]:
        """Wait until the job's run applied a unit (its local ledger in the job's build folder,
        read often: the shared table is slower to scan), then kill `job`; the pids killed."""
        runs = self.origin / ".gitlab-ci-local" / "builds" / job / "live" / ".refarch" / "runs"
        earlier = set(runs.glob("*.jsonl")) if runs.is_dir() else set()  # an earlier pipeline's
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            for ledger in set(runs.glob("*.jsonl")) - earlier if runs.is_dir() else ():
                events = []
                for line in ledger.read_text(errors="replace").splitlines():
                    try:
                        events.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
                if events and events[0].get("action") == "apply" and any(_applied(e) for e in events):
                    return kill_job(process.pid, job)
            time.sleep(0.05)
        return []

    # -- reading what happened -----------------------------------------------------------------
    def dynamodb(self) -> Any:
        session = boto3.Session(**{k.lower(): v for k, v in FAKE.items()}, region_name="us-east-1")
        keys = session.client("sts", endpoint_url=self.endpoint).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNTS['security']}:role/OrganizationAccountAccessRole",
            RoleSessionName="bench",
        )["Credentials"]
        return session.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"],
        )

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        """Every run's events in the shared ledger, by run id (oldest run first)."""
        runs: dict[str, list[dict[str, Any]]] = {}
        for page in self.dynamodb().get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True):
            for item in page["Items"]:
                if item["pk"]["S"].startswith("run#"):
                    runs.setdefault(item["pk"]["S"][4:], []).append(item)
        return {
            run_id: [json.loads(i["body"]["S"]) for i in sorted(items, key=lambda i: i["sk"]["S"])]
            for run_id, items in sorted(runs.items())
        }

    def applied(self, since: set[str] | None = None) -> Counter[str]:
        """How often each unit was really applied (a saved plan without changes is not)."""
        found: Counter[str] = Counter()
        for run_id, events in self.ledger().items():
            if since is not None and run_id in since:
                continue
            found.update(e["unit"] for e in events if _applied(e))
        return found

    def notices(self) -> list[str]:
        return [e["text"] for events in self.ledger().values() for e in events if e.get("event") == "notice"]


def _applied(event: dict[str, Any]) -> bool:
    return (
        event.get("event") == "unit_finish"
        and event.get("action") == "apply"
        and event.get("status") == "succeeded"
        and event.get("message") != NOTHING_TO_APPLY
    )


def kill_job(root: int, job: str) -> list[int]:
    """SIGKILL every process of `job` under `root` (gitlab-ci-local): the processes whose
    working folder is the job's build folder, and all they started."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    marker = f"/.gitlab-ci-local/builds/{job}"
    heads = []
    for pid in tree:
        try:
            if os.readlink(f"/proc/{pid}/cwd").endswith(marker) and pid != root:
                heads.append(pid)
        except OSError:
            continue
    victims: list[int] = []
    todo = list(heads)
    while todo:
        pid = todo.pop()
        victims.append(pid)
        todo.extend(children.get(pid, []))
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return victims


def simulate(tmp: Path, endpoint: str) -> dict[str, Any]:
    """Run the four scenarios; return what each did (the test asserts, the bench prints)."""
    pipe = Pipeline(tmp, endpoint)
    f: dict[str, Any] = {"units": 5}
    jobs_file = (pipe.origin / ".gitlab-ci.yml").read_text()
    f["jobs"] = sorted(line[:-1] for line in jobs_file.splitlines() if line.startswith(("plan-", "apply-")))
    try:
        # 1. clean: all but apply-prod (manual); a changed unit is refused; then approved
        code, out, wall = pipe.gitlab()
        f["clean"] = {"exit": code, "wall_s": wall, "applied": dict(pipe.applied()), "output": out[-3000:]}
        vpc = pipe.origin / "live" / "prod" / "us-east-1" / "vpc" / "terragrunt.hcl"
        reviewed = vpc.read_text()
        vpc.write_text(reviewed + "# changed after the review\n")
        pipe.commit("prod vpc changed after its plan was reviewed")
        code, out, _ = pipe.gitlab("--manual", "apply-prod", "apply-prod")
        pipe.manual_steps += 1
        f["changed_after_review"] = {"exit": code, "output": out[-3000:], "applied": dict(pipe.applied())}
        vpc.write_text(reviewed)
        pipe.commit("revert")
        code, out, _ = pipe.gitlab("--manual", "apply-prod", "apply-prod")
        pipe.manual_steps += 1
        f["approved"] = {"exit": code, "output": out[-3000:], "applied": dict(pipe.applied())}

        # 2. rerun: nothing changed since the last deployment
        before = set(pipe.ledger())
        code, out, wall = pipe.gitlab("--manual", "apply-prod")
        f["rerun"] = _scenario(pipe, before, code, out, wall)

        # 3. one module: vpc (shared-services, dev, prod use it)
        module = pipe.origin / "live" / "modules" / "vpc" / "main.tf"
        module.write_text(module.read_text() + '\noutput "ci_marker" {\n  value = "one-module commit"\n}\n')
        pipe.commit("vpc module: one more output")
        before = set(pipe.ledger())
        code, out, wall = pipe.gitlab("--manual", "apply-prod")
        f["one_module"] = {
            **_scenario(pipe, before, code, out, wall),
            "apply_runs": _apply_runs(pipe, before),
        }

        # 4. a runner dies mid-apply; the job is retried
        for name in ("ecr-repos", "vpc"):
            main_tf = pipe.origin / "live" / "modules" / name / "main.tf"
            main_tf.write_text(main_tf.read_text() + '\noutput "ci_retry" {\n  value = "retry"\n}\n')
        pipe.commit("ecr-repos and vpc modules: one more output")
        before = set(pipe.ledger())
        victim = "apply-shared-services"
        code, out, wall = pipe.gitlab("--manual", "apply-prod", kill_after_first_apply=victim)
        killed = {"exit": code, "wall_s": wall, "applied": dict(pipe.applied(before)), "output": out[-3000:]}
        code, out, retry_s = pipe.gitlab(victim)
        pipe.manual_steps += 1  # pressing "retry"
        f["kill_retry"] = {
            "killed": killed,
            "retry_exit": code,
            "retry_s": retry_s,
            "applied": dict(pipe.applied(before)),
            "notices": [n for n in pipe.notices() if "released" in n],
            "output": out[-4000:],
        }
        f["manual_steps"] = pipe.manual_steps
    finally:
        pipe.mirror.stop()
    return f


def _scenario(pipe: Pipeline, before: set[str], code: int, out: str, wall: float) -> dict[str, Any]:
    return {"exit": code, "wall_s": wall, "applied": dict(pipe.applied(before)), "output": out[-3000:]}


def _apply_runs(pipe: Pipeline, before: set[str]) -> dict[str, int]:
    """Units each new apply run selected, by the account of its units."""
    found: dict[str, int] = {}
    for run_id, events in pipe.ledger().items():
        start = events[0]
        if run_id in before or start.get("action") != "apply":
            continue
        for unit in start.get("units", []):
            found[unit.split("/")[0]] = found.get(unit.split("/")[0], 0) + 1
    return found


def main() -> int:
    keep = sys.argv[1] if len(sys.argv) > 1 else None  # a folder to keep everything in
    reason = missing()
    if reason:
        print(f"skipped: {reason}")
        return 0
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    started = time.perf_counter()
    try:
        if keep:
            f = simulate(Path(keep), f"http://{host}:{port}")
        else:
            with tempfile.TemporaryDirectory(prefix="refarch-gitlab-") as tmp:
                f = simulate(Path(tmp), f"http://{host}:{port}")
    finally:
        server.stop()
    print(f"GitLab pipeline in gitlab-ci-local (shell executor): {len(f['jobs'])} jobs, {f['units']} units")
    print(f"  clean pipeline           {f['clean']['wall_s']:6.1f} s  exit {f['clean']['exit']}")
    rerun = f["rerun"]
    print(f"  rerun (nothing changed)  {rerun['wall_s']:6.1f} s  applied {sum(rerun['applied'].values())}")
    print(
        f"  one-module commit        {f['one_module']['wall_s']:6.1f} s  applied "
        f"{sorted(f['one_module']['applied'])}"
    )
    retry = f["kill_retry"]
    print(f"  retry to green           {retry['retry_s']:6.1f} s  exit {retry['retry_exit']}")
    per_unit = sorted(set(f["approved"]["applied"].values()))
    print(f"  applies per unit         {per_unit}  (clean pipeline and approval)")
    print(f"  manual steps             {f['manual_steps']}  (2 approvals of apply-prod, 1 retry; no unlock)")
    print(f"  wall time                {time.perf_counter() - started:6.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
