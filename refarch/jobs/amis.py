"""Build the architecture's AMIs with Packer, share them with the app accounts, record their ids.

One Packer run per (template, region), a bounded number at a time. Each run gets the target
account's temporary credentials as environment variables (Packer 1.6's own `assume_role`
cannot use a custom STS endpoint, so refarch assumes the role with boto3), builds with
`-machine-readable` (read by refarch.provision.packer_output), and its artifact lines give the
AMI id. refarch then makes sure the app accounts have launch permission and records the ids
(refarch.provision.ami_record: `.refarch/amis.json` and `amis.auto.hcl`, which units read).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import botocore.exceptions

from refarch.aws import AwsSessions
from refarch.errors import (
    AwsError,
    ConfigError,
    ProcessFailed,
    ProvisionError,
    RefarchError,
    RunInterrupted,
    UsageError,
)
from refarch.exec.process import Interrupt, LineCallback, ProcessResult, run_process
from refarch.exec.retry import PACKER_RULES, RetryRule, attempt_loop, decide, rules_from_settings
from refarch.files import local_dir, write_atomic
from refarch.models import Repo
from refarch.provision import Status
from refarch.provision.ami_record import RECORD_FILE, AmiStore
from refarch.provision.ami_retention import (
    Retention,
    list_images,
    plan_retention,
    referenced_amis,
    remove_image,
    repo_tags,
)
from refarch.provision.packer_output import human_line, parse_artifact_ids, parse_errors
from refarch.repo import load_repo
from refarch.resources import data_dir
from refarch.runner.ledger_dynamodb import repo_name
from refarch.settings import AmisSettings, Settings, load_settings

TEMPLATE_SUFFIX = ".pkr.hcl"
SHARED_TEMPLATE_FILES = ("common",)  # loaded with every template, not a template itself
LOG_DIR = Path(".refarch") / "logs" / "amis"
VARS_DIR = Path(".refarch") / "amis"
CACHE_DIR = Path(".refarch") / "cache" / "packer"
DEFAULT_ACCOUNT = "shared-services"
DEFAULT_SHARE_WITH = ("dev", "stage", "prod")
# The default (AWS-managed) EBS key cannot be granted to other accounts.
AWS_MANAGED_EBS_KEY = re.compile(r"^(?:arn:aws[\w-]*:kms:[\w-]+:\d{12}:)?alias/aws/ebs$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
# Environment variables a Packer child inherits; everything else is set explicitly.
INHERITED_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR")


def packer_rules(settings: Settings) -> tuple[RetryRule, ...]:
    """The rules a Packer failure is matched against: the user's, Packer's, then the defaults."""
    rules = rules_from_settings(settings)
    user = tuple(r for r in rules if r.origin == "user")
    return user + PACKER_RULES + tuple(r for r in rules if r.origin != "user")


class Runner(Protocol):
    """The process seam: refarch.exec.process.run_process or a fake with its signature."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | Path,
        env: Mapping[str, str],
        on_line: LineCallback | None = ...,
        log_path: Path | None = ...,
        interrupt: Interrupt | None = ...,
    ) -> ProcessResult: ...


EventKind = Literal["start", "output", "retry", "built", "shared", "failed"]


@dataclass(frozen=True)
class AmiEvent:
    """Something that happened to one build, for the CLI (or a platform script) to render."""

    kind: EventKind
    template: str
    region: str
    message: str


EventCallback = Callable[[AmiEvent], None]


@dataclass(frozen=True)
class AmiBuild:
    """One AMI built by one Packer run, and what refarch did with it."""

    template: str
    region: str
    ami_id: str
    account: str
    account_id: str
    build_id: str
    shared_with: tuple[str, ...]  # account ids with launch permission
    sharing: Status  # created (refarch granted it) | exists (Packer's ami_users already had)
    attempts: int
    log_path: str
    built_at: str

    def to_json(self) -> dict[str, Any]:
        """The entry of .refarch/amis.json for this template and region."""
        return {
            "ami_id": self.ami_id,
            "account": self.account,
            "account_id": self.account_id,
            "build_id": self.build_id,
            "shared_with": list(self.shared_with),
            "built_at": self.built_at,
            "log": self.log_path,
        }


@dataclass(frozen=True)
class AmiRecord:
    """What a build run made, and every AMI id refarch knows (this run merged into the record)."""

    builds: tuple[AmiBuild, ...]
    ids: Mapping[str, Mapping[str, str]]  # template -> region -> AMI id
    path: Path  # .refarch/amis.json
    hcl_path: Path  # amis.auto.hcl
    retention: Retention | None = None  # what `keep` removed after the builds, if asked

    def ami(self, template: str, region: str) -> str:
        """The recorded AMI id of `template` in `region`."""
        try:
            return self.ids[template][region]
        except KeyError:
            raise ConfigError(
                f"no AMI recorded for {template} in {region}",
                path=self.path,
                hint=f"run `refarch amis build {template} --regions {region}`",
            ) from None


# -- templates, accounts, refusal rules -------------------------------------------------------


def default_packer_dir(root: Path) -> Path | None:
    """`<repo>/packer`, else the templates shipped with refarch (checkout or wheel)."""
    for candidate in (root / "packer", data_dir("packer")):
        if candidate.is_dir() and any(candidate.glob(f"*{TEMPLATE_SUFFIX}")):
            return candidate
    return None


def list_templates(packer_dir: Path) -> tuple[str, ...]:
    """Template names in a Packer folder: every `<name>.pkr.hcl` except the shared files."""
    names = (p.name.removesuffix(TEMPLATE_SUFFIX) for p in packer_dir.glob(f"*{TEMPLATE_SUFFIX}"))
    return tuple(sorted(n for n in names if n not in SHARED_TEMPLATE_FILES))


def build_name(template: str) -> str:
    """The `-only` name of a template's build: each names the base source after itself."""
    return f"amazon-ebs.{template}"


def check_sharing(
    encrypt_boot: bool,
    kms_key_id: str | None,
    share_with: Sequence[str],
    region: str,
    settings_path: Path | None = None,
) -> None:
    """Refuse an encrypted AMI that would be shared but cannot be used by the accounts.

    An AMI encrypted with the AWS-managed `aws/ebs` key (what encrypt_boot uses without a
    kms_key_id) can be shared, but no other account can launch it: that key's policy cannot
    be changed to let them decrypt the snapshots. Only a customer-managed key can be granted.
    """
    if not (encrypt_boot and share_with):
        return
    if kms_key_id and not AWS_MANAGED_EBS_KEY.match(kms_key_id):
        return
    used = "the AWS-managed aws/ebs key" if kms_key_id else "no kms_key_id (so aws/ebs)"
    raise ConfigError(
        f"refusing to share an encrypted AMI in {region} with {', '.join(share_with)}: "
        f"encrypt_boot is on with {used}. An AMI encrypted with the default aws/ebs key "
        "cannot be launched by other accounts, because that key's policy cannot grant them "
        "decrypt access",
        path=settings_path,
        hint="set [amis] kms_key_id to a customer-managed KMS key whose policy allows the app "
        "accounts (kms:Decrypt, kms:CreateGrant, kms:DescribeKey), or build without sharing "
        "(--share-with '') or without encrypt_boot",
    )


def repo_identity(repo: Repo, settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """What names this live repo on the images it builds: `[ledger] repo`, else git's origin
    URL without credentials, else the folder's name (as the shared ledger names it)."""
    return settings.ledger.repo or repo_name(repo.root, dict(os.environ if env is None else env))


def _account_id(repo: Repo, name: str) -> str:
    if ACCOUNT_ID.match(name):
        return name
    try:
        account = repo.account(name)
    except KeyError:
        known = ", ".join(a.name for a in repo.accounts)
        raise ConfigError(
            f"no account named {name!r} in the live repo",
            path=repo.root,
            hint=f"known accounts: {known}; or give a 12-digit account id",
        ) from None
    if not account.id:
        raise ConfigError(
            f"account {name!r} has no account id in its account.hcl",
            path=repo.root / name,
            hint="set account_id in its account.hcl",
        )
    return account.id


def _regions_for(repo: Repo, names: Sequence[str], fallback: str) -> tuple[str, ...]:
    """Where the sharing accounts run: the union of their regions, else the default region."""
    regions: set[str] = set()
    for name in names:
        if ACCOUNT_ID.match(name):
            continue
        try:
            regions.update(repo.account(name).regions)
        except KeyError:
            continue
    return tuple(sorted(regions)) or (fallback,)


def _load_repo(repo_or_root: Repo | str | Path, settings: Settings) -> Repo:
    if isinstance(repo_or_root, Repo):
        return repo_or_root
    return load_repo(Path(repo_or_root), settings=settings)


# -- sharing ----------------------------------------------------------------------------------


def ensure_launch_permissions(ec2: Any, ami_id: str, account_ids: Sequence[str]) -> Status:
    """Give each account launch permission on the AMI; `exists` when all already had it."""
    current = ec2.describe_image_attribute(ImageId=ami_id, Attribute="launchPermission")
    have = {p.get("UserId") for p in current.get("LaunchPermissions", [])}
    missing = [a for a in account_ids if a not in have]
    if not missing:
        return "exists"
    ec2.modify_image_attribute(ImageId=ami_id, LaunchPermission={"Add": [{"UserId": a} for a in missing]})
    return "created"


# -- building ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    template: str
    region: str


def _new_build_id() -> str:
    """Sortable by build time to the microsecond (retention breaks CreationDate ties with it)."""
    return f"{datetime.now(UTC):%Y%m%d%H%M%S%f}-{uuid.uuid4().hex[:6]}"


class _Builder:
    """The state one build_amis() call shares between its worker threads."""

    def __init__(
        self,
        repo: Repo,
        settings: Settings,
        *,
        packer_dir: Path,
        account: str,
        account_id: str,
        share_ids: tuple[str, ...],
        sessions: AwsSessions,
        runner: Runner,
        on_event: EventCallback | None,
        sleep: Callable[[float], None],
        env: Mapping[str, str] | None,
        interrupt: Interrupt | None,
    ) -> None:
        self.root = repo.root
        self.packer_dir = packer_dir
        self.config = settings.amis
        self.settings = settings
        self.account = account
        self.account_id = account_id
        self.share_ids = share_ids
        self.communicator = self.config.communicator or ("none" if settings.endpoint_url else "ssh")
        self.sessions = sessions
        self.runner = runner
        self.rules = packer_rules(settings)
        self.on_event = on_event
        self.sleep = sleep
        self.base_env = {k: v for k, v in (os.environ if env is None else env).items() if k in INHERITED_ENV}
        self.interrupt = interrupt
        self.store = AmiStore(repo.root)
        self.repo_identity = repo_identity(repo, settings, env)  # tagged on every image: whose it is

    def emit(self, kind: EventKind, job: _Job, message: str) -> None:
        if self.on_event is not None:
            self.on_event(AmiEvent(kind, job.template, job.region, message))

    def variables(self, job: _Job, build_id: str) -> dict[str, Any]:
        """The Packer variables of one attempt: settings first, refarch's own on top."""
        values: dict[str, Any] = {**self.config.vars, **self.config.templates.get(job.template, {})}
        values.update(
            region=job.region,
            endpoint=self.settings.endpoint_url or "",
            communicator=self.communicator,
            build_id=build_id,
            ami_users=list(self.share_ids),
            encrypt_boot=self.config.encrypt_boot,
            kms_key_id=self.config.kms_key_for(job.region) or "",
            tags={**self.config.tags, **dict(values.get("tags", {})), **repo_tags(self.repo_identity)},
        )
        return values

    def env(self, region: str) -> dict[str, str]:
        creds = self.sessions.credentials_env(self.account_id, region, self.account)
        return {
            **self.base_env,
            **creds,
            "CHECKPOINT_DISABLE": "1",  # no call home to checkpoint-api.hashicorp.com
            "PACKER_CACHE_DIR": str(self.root / CACHE_DIR),
        }

    def run(self, job: _Job) -> AmiBuild:
        if self.interrupt is not None and self.interrupt.requested.is_set():
            raise RunInterrupted(f"{job.template} in {job.region}: not started (interrupted)")
        session = self.sessions.session(self.account_id, self.account, job.region)
        self.sessions.check_account(f"AMI {job.template}", self.account_id, session)
        env = self.env(job.region)
        log_path = self.root / LOG_DIR / f"{job.template}.{job.region}.log"
        local_dir(self.root, *LOG_DIR.parts[1:])  # 0700 levels, ours alone
        name = build_name(job.template)
        self.emit("start", job, f"packer build {name} in {job.region} ({self.account})")
        build_ids: list[str] = []

        def one(number: int, _remedies: frozenset[str]) -> tuple[ProcessResult, list[str]]:
            build_ids.append(_new_build_id())
            return self.attempt(job, name, build_ids[-1], env, log_path=log_path, attempt=number)

        done = attempt_loop(  # the same loop as a unit's attempts, with Packer's rules
            one,
            lambda result, number: decide(self.rules, result, number),
            sleep=self.sleep,
            on_retry=lambda _n, d: self.emit("retry", job, f"{d.reason}; next attempt in {d.delay:.0f}s"),
            stop=lambda: self.interrupt is not None and self.interrupt.requested.is_set(),
        )
        result, lines, attempt, build_id = done.result, done.value, done.attempts, build_ids[-1]
        ami_id = self._ami_id(job, name, done.stopped, result, lines, log_path)
        self.emit("built", job, ami_id)
        build = AmiBuild(
            template=job.template,
            region=job.region,
            ami_id=ami_id,
            account=self.account,
            account_id=self.account_id,
            build_id=build_id,
            shared_with=self.share_ids,
            sharing=self._share(job, ami_id),
            attempts=attempt,
            log_path=str(log_path.relative_to(self.root)),
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self.store.add(build)
        return build

    def _ami_id(
        self, job: _Job, name: str, stopped: bool, result: ProcessResult, lines: list[str], log_path: Path
    ) -> str:
        """The AMI id the last attempt's artifact lines give; its failure raised otherwise."""
        if result.interrupted or (stopped and not result.ok):
            self.emit("failed", job, "interrupted")
            raise RunInterrupted(
                f"packer build of {job.template} in {job.region} was interrupted",
                hint=f"Packer was let clean up its temporary instance; see {log_path}",
            )
        if not result.ok:
            errors = parse_errors(lines) or [result.output_tail[-2000:]]
            self.emit("failed", job, errors[-1])
            raise ProcessFailed(
                result.argv,
                result.cwd,
                result.returncode,
                "\n".join(errors) + f"\n(full log: {log_path})",
            )
        ami_id = parse_artifact_ids(lines).get(name, {}).get(job.region)
        if ami_id is None:
            raise ProvisionError(
                f"packer built {name} in {job.region} but reported no AMI id for that region",
                hint=f"see {log_path}",
            )
        return ami_id

    def _share(self, job: _Job, ami_id: str) -> Status:
        """Launch permission for the sharing accounts: created, or exists (already had it)."""
        if not self.share_ids:
            return "exists"
        ec2 = self.sessions.client("ec2", self.account_id, job.region, self.account)
        try:
            sharing = ensure_launch_permissions(ec2, ami_id, self.share_ids)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise AwsError(
                f"built {ami_id} ({job.template}, {job.region}) but could not share it: {exc}",
                hint="check ec2:ModifyImageAttribute in the target account's role, then "
                "re-run the build of this template and region",
            ) from None
        self.emit("shared", job, f"{ami_id} launch permission: {', '.join(self.share_ids)} ({sharing})")
        return sharing

    def attempt(
        self,
        job: _Job,
        name: str,
        build_id: str,
        env: Mapping[str, str],
        *,
        log_path: Path,
        attempt: int,
    ) -> tuple[ProcessResult, list[str]]:
        var_file = self.root / VARS_DIR / f"{job.template}.{job.region}.pkrvars.json"
        write_atomic(
            var_file, json.dumps(self.variables(job, build_id), indent=2, sort_keys=True) + "\n", mode=0o644
        )
        argv = [
            self.config.packer,
            "build",
            "-machine-readable",
            "-color=false",
            f"-only={name}",
            f"-var-file={var_file}",
            str(self.packer_dir),
        ]
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"# refarch: attempt {attempt}, build {build_id}: {' '.join(argv)}\n")
        lines: list[str] = []

        def on_line(_stream: str, line: str) -> None:
            lines.append(line)
            text = human_line(line)
            if text is not None:
                self.emit("output", job, text)

        result = self.runner(
            argv, cwd=self.packer_dir, env=env, on_line=on_line, log_path=log_path, interrupt=self.interrupt
        )
        return result, lines


def build_amis(
    repo_or_root: Repo | str | Path,
    settings: Settings,
    *,
    templates: Sequence[str] | None = None,
    account: str = DEFAULT_ACCOUNT,
    regions: Sequence[str] | None = None,
    share_with: Sequence[str] | None = None,
    sessions: AwsSessions | None = None,
    parallelism: int | None = None,
    on_event: EventCallback | None = None,
    runner: Runner = run_process,
    sleep: Callable[[float], None] = time.sleep,
    env: Mapping[str, str] | None = None,
    interrupt: Interrupt | None = None,
    keep: int | None = None,
) -> AmiRecord:
    """Build `templates` (default: all in the Packer folder) in `account` for each region,
    share them with `share_with` accounts, and record the ids for the units.

    Defaults, when an argument is None: `[amis]` of refarch.toml, then regions = where the sharing
    accounts run, share_with = those of dev, stage, prod the repo has, parallelism = 2. Every build
    is attempted even when one fails; the finished ones are recorded, then the failures raised. A
    failed build records nothing: the last good id stays in both files. With `keep` (or `[amis]
    keep`) and every build done, retention (prune_amis) then removes the older images of the built
    templates and regions that no unit references.
    """
    repo = _load_repo(repo_or_root, settings)
    packer_dir, chosen = _chosen_templates(repo.root, settings.amis, templates)
    account_id = _account_id(repo, account)
    share_ids, chosen_regions = _sharing(repo, settings, account_id, share_with, regions)
    sessions = sessions or AwsSessions(settings)
    _check_identity(sessions, f"AMIs in {account}", account, account_id, chosen_regions[0])
    builder = _Builder(
        repo,
        settings,
        packer_dir=packer_dir,
        account=account,
        account_id=account_id,
        share_ids=share_ids,
        sessions=sessions,
        runner=runner,
        on_event=on_event,
        sleep=sleep,
        env=env,
        interrupt=interrupt,
    )
    builds = _build_all(builder, chosen, chosen_regions, parallelism or settings.amis.parallelism)
    retention = _retention(repo, settings, keep, account, chosen, chosen_regions, sessions, env)
    store = builder.store
    return AmiRecord(tuple(builds), store.ids(), store.path, store.hcl_path, retention)


def _retention(
    repo: Repo,
    settings: Settings,
    keep: int | None,
    account: str,
    templates: Sequence[str],
    regions: Sequence[str],
    sessions: AwsSessions,
    env: Mapping[str, str] | None,
) -> Retention | None:
    """After the builds: prune_amis of the built templates and regions, when a count is set."""
    if keep is None and settings.amis.keep is None:
        return None
    return prune_amis(
        repo,
        settings,
        keep=keep,
        account=account,
        templates=templates,
        regions=regions,
        sessions=sessions,
        env=env,
    )


def _check_identity(sessions: AwsSessions, what: str, account: str, account_id: str, region: str) -> None:
    """One identity check up front: a credentials problem is one error, not one per build."""
    sessions.check_account(what, account_id, sessions.session(account_id, account, region))


def _chosen_templates(
    root: Path, config: AmisSettings, templates: Sequence[str] | None
) -> tuple[Path, tuple[str, ...]]:
    """The Packer folder and the templates to build (all of them when none are named)."""
    packer_dir = config.packer_dir or default_packer_dir(root)
    if packer_dir is None or not packer_dir.is_dir():
        raise ConfigError(
            "no Packer templates found",
            path=packer_dir or root / "packer",
            hint="add <repo>/packer/*.pkr.hcl or set [amis] packer_dir",
        )
    available = list_templates(packer_dir)
    chosen = tuple(templates) if templates else available
    unknown = [t for t in chosen if t not in available]
    if unknown:
        raise UsageError(
            f"unknown AMI template(s): {', '.join(unknown)}",
            hint=f"templates in {packer_dir}: {', '.join(available)}",
        )
    if not chosen:
        raise ConfigError("the Packer folder has no templates", path=packer_dir)
    return packer_dir, chosen


def _sharing(
    repo: Repo,
    settings: Settings,
    account_id: str,
    share_with: Sequence[str] | None,
    regions: Sequence[str] | None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The account ids given launch permission, and the regions to build in (checked: an
    encrypted AMI can be shared only with a key the other accounts may use)."""
    config = settings.amis
    if share_with is not None:
        sharing_names = tuple(share_with)
    elif config.share_with is not None:
        sharing_names = config.share_with
    else:  # the default names only the app accounts this repo has
        known = {a.name for a in repo.accounts}
        sharing_names = tuple(n for n in DEFAULT_SHARE_WITH if n in known)
    share_ids = tuple(
        dict.fromkeys(i for i in (_account_id(repo, n) for n in sharing_names) if i != account_id)
    )
    chosen_regions = (
        tuple(regions) if regions else (config.regions or _regions_for(repo, sharing_names, settings.region))
    )
    for region in chosen_regions:
        check_sharing(
            config.encrypt_boot,
            config.kms_key_for(region),
            sharing_names if share_ids else (),
            region,
            settings.path,
        )
    return share_ids, chosen_regions


def _build_all(
    builder: _Builder, templates: Sequence[str], regions: Sequence[str], workers: int
) -> list[AmiBuild]:
    """Every build attempted, `workers` at a time; the failures raised once all have ended."""
    jobs = [_Job(t, r) for t in templates for r in regions]
    builds: list[AmiBuild] = []
    failures: list[tuple[_Job, RefarchError]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ami") as pool:
        futures = [(job, pool.submit(builder.run, job)) for job in jobs]
        for job, future in futures:
            try:
                builds.append(future.result())
            except RefarchError as exc:
                failures.append((job, exc))
    stopped = [e for _, e in failures if isinstance(e, RunInterrupted)]
    if stopped:
        raise RunInterrupted(
            f"AMI builds interrupted: {len(builds)} of {len(jobs)} finished and are recorded "
            f"in {RECORD_FILE}",
            hint=stopped[0].hint,
        )
    if len(failures) == 1 and not builds:
        raise failures[0][1]
    if failures:
        detail = "\n".join(f"- {j.template} in {j.region}: {e}" for j, e in failures)
        raise ProvisionError(
            f"{len(failures)} of {len(jobs)} AMI builds failed "
            f"({len(builds)} succeeded and are recorded in {RECORD_FILE}):\n{detail}",
            hint=f"see the logs in {builder.root / LOG_DIR}; re-run with only the failed templates",
        )
    return builds


def prune_amis(
    repo_or_root: Repo | str | Path,
    settings: Settings,
    *,
    keep: int | None = None,
    account: str = DEFAULT_ACCOUNT,
    templates: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    sessions: AwsSessions | None = None,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> Retention:
    """Deregister `account`'s older refarch-built AMIs and delete their snapshots.

    Per template and region the newest `keep` (default `[amis] keep`) stay, and so does every
    image recorded in .refarch/amis.json or named by a unit's evaluated inputs. Regions default
    to `[amis] regions` plus those in the record. Only images tagged with this repo's identity
    (`repo_identity`) are candidates: another repo's, or untagged ones, are never touched.
    """
    repo = _load_repo(repo_or_root, settings)
    config = settings.amis
    count = keep if keep is not None else config.keep
    if count is None or count < 1:
        raise UsageError(
            "no retention count" if count is None else f"--keep must be at least 1, not {count}",
            hint="give --keep N, or set [amis] keep = N in refarch.toml",
        )
    account_id = _account_id(repo, account)
    recorded = AmiStore(repo.root).ids()
    if regions:
        chosen_regions = tuple(regions)
    else:
        found = {r for by in recorded.values() for r in by} | set(config.regions)
        chosen_regions = tuple(sorted(found)) or (settings.region,)
    references = referenced_amis(repo.units.values())
    recorded_ids = {ami for by in recorded.values() for ami in by.values()}
    sessions = sessions or AwsSessions(settings)
    _check_identity(sessions, f"AMI retention in {account}", account, account_id, chosen_regions[0])
    removed = []
    kept = []
    for region in chosen_regions:
        ec2 = sessions.client("ec2", account_id, region, account)
        try:
            images = list_images(ec2, region, templates, repo=repo_identity(repo, settings, env))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise AwsError(f"could not list the AMIs of {account} in {region}: {exc}") from None
        remove, keep_these = plan_retention(images, count, recorded=recorded_ids, references=references)
        for image in remove:
            if not dry_run:
                remove_image(ec2, image)
            removed.append(image)
        kept.extend(keep_these)
    return Retention(count, tuple(removed), tuple(kept), dry_run)


# -- `refarch amis build|prune` as jobs ------------------------------------------------------


@dataclass(frozen=True)
class AmisBuildRequest:
    """What `refarch amis build DIR [TEMPLATE...]` is asked, one field per flag (None: the
    `[amis]` setting, then build_amis's default)."""

    directory: str | Path
    templates: tuple[str, ...] = ()  # all of the Packer folder when empty
    account: str = DEFAULT_ACCOUNT
    regions: tuple[str, ...] | None = None
    share_with: tuple[str, ...] | None = None  # () shares with none
    parallelism: int | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    keep: int | None = None  # then prune to this many images per template and region


@dataclass(frozen=True)
class AmisPruneRequest:
    """What `refarch amis prune DIR` is asked, one field per flag."""

    directory: str | Path
    keep: int | None = None  # None: `[amis] keep`
    account: str = DEFAULT_ACCOUNT
    regions: tuple[str, ...] | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    dry_run: bool = False


def _settings_repo(directory: str | Path, endpoint_url: str | None, profile: str | None) -> Repo:
    root = Path(directory).resolve()
    settings = load_settings(root).with_overrides(endpoint_url=endpoint_url, profile=profile)
    return load_repo(root, settings=settings)


def run_amis_build(
    request: AmisBuildRequest,
    *,
    on_event: EventCallback | None = None,
    interrupt: Interrupt | None = None,
    sessions: AwsSessions | None = None,
    runner: Runner = run_process,
    sleep: Callable[[float], None] = time.sleep,
) -> AmiRecord:
    """What `refarch amis build DIR [TEMPLATE...]` does: settings with the request's
    overrides, the repo, then `build_amis` (and its retention with `keep`)."""
    repo = _settings_repo(request.directory, request.endpoint_url, request.profile)
    return build_amis(
        repo,
        repo.settings,
        templates=request.templates or None,
        account=request.account,
        regions=request.regions,
        share_with=request.share_with,
        sessions=sessions,
        parallelism=request.parallelism,
        on_event=on_event,
        runner=runner,
        sleep=sleep,
        interrupt=interrupt,
        keep=request.keep,
    )


def run_amis_prune(request: AmisPruneRequest, *, sessions: AwsSessions | None = None) -> Retention:
    """What `refarch amis prune DIR` does: `prune_amis` with the request's overrides."""
    repo = _settings_repo(request.directory, request.endpoint_url, request.profile)
    return prune_amis(
        repo,
        repo.settings,
        keep=request.keep,
        account=request.account,
        regions=request.regions,
        sessions=sessions,
        dry_run=request.dry_run,
    )
