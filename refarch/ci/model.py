"""The pipeline model: a live repo's apply plan sliced into CI jobs, as data.

`pipeline(plan, directory, options)` slices an apply plan into jobs: one per account, or one
per tier where that loses no parallelism (`granularity="auto"`). Each job is a pair on the
default branch: `plan-<x>` saves the plans of its units (`plan-all --out-dir`, read-only role,
no state locks) after the applies of the accounts it depends on, and `apply-<x>` applies
exactly those saved plans (`apply --plan-dir`), behind its account's environment and, for the
accounts `[ci] approval` lists, a person's approval. Every unit is planned and applied by
exactly one job. Every name and value that reaches YAML or a shell is checked here against a
safe pattern (UsageError, exit 2, naming it); the emitters (github.py, gitlab.py) only lay out.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from importlib import metadata

from refarch.errors import UsageError
from refarch.models import Plan
from refarch.settings import (
    CI_INSTALL,
    CI_NAME,
    CRON,
    DEFAULT_CI_TERRAFORM_VERSION,
    SHA256,
    TERRAFORM_SHA256,
    CiSettings,
)

GRANULARITIES = ("auto", "account", "tier")
SYSTEMS = ("github", "gitlab")
REPORTS = "refarch-reports"
# Each plan job's saved plans (`plan-all --out-dir`): the apply job applies exactly these.
PLANS = "refarch-plans"
TOOLS = ".refarch-tools"  # the job's downloads (Terraform, the wheel), below its workspace
CACHE = ".refarch-cache"  # pip's cache and the provider cache, kept between jobs
DRIFT = "refarch-drift"  # each scheduled drift job's `refarch drift --out-dir` (drift.json, summary.md)
DEFAULT_APPROVAL = ("prod", "prod-*", "*-prod")
# What may reach a YAML scalar or a shell word unquoted: no spaces, quotes, `$`, `{`, `` ` ``,
# `;`, `|`, `&`, `*`, newlines. Anything else is refused, naming where it came from.
SAFE_PATH = re.compile(r"^[A-Za-z0-9_.@+=,-]+(/[A-Za-z0-9_.@+=,-]+)*$")
SAFE_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
SAFE_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SAFE_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
GIT_AT_COMMIT = re.compile(r"^git\+https://[A-Za-z0-9_.:/%~-]+@[0-9a-f]{40}(#egg=[A-Za-z0-9_-]+)?$")


def _refarch_version() -> str:
    try:
        return metadata.version("refarch")
    except metadata.PackageNotFoundError:  # running from a source tree without metadata
        return "0.1.0"


def _check(value: str, pattern: re.Pattern[str], what: str, hint: str) -> str:
    if not pattern.fullmatch(value):
        raise UsageError(f"{what} {value!r} cannot be put in a CI pipeline safely", hint=hint)
    return value


@dataclass(frozen=True)
class CiOptions:
    """What the emitted pipeline installs, how it reaches AWS, and who approves.

    `install` is what every job pip-installs (refarch is not on PyPI: a wheel's https URL or
    repo-relative path, with `install_sha256`; a git URL at a 40-hex commit; or `refarch==X`
    from your own index): `[ci] install` in refarch.toml, which `refarch new` writes."""

    install: str = ""
    install_sha256: str | None = None
    branch: str = "main"  # the branch whose pushes apply
    engine: str = "terraform"  # terraform (downloaded by the job) or terragrunt
    terraform_version: str = "1.0.3"
    terraform_sha256: str | None = None  # unset: refarch's pin for terraform_version
    terraform_mirror: str = "https://releases.hashicorp.com/terraform"
    terragrunt_version: str = "0.77.22"
    terragrunt_sha256: str | None = None  # required with engine terragrunt
    python_version: str = "3.12"
    role_variable: str = "REFARCH_CI_ROLE_ARN"  # CI variable: the ARN of the role apply jobs assume
    plan_role_variable: str = "REFARCH_CI_PLAN_ROLE_ARN"  # the same for every plan (read-only)
    plan_role_name: str | None = None  # [ci] plan_role_name: the role plans assume in each account
    approval: tuple[str, ...] = DEFAULT_APPROVAL  # account globs whose apply waits for a person
    region: str = "us-east-1"
    parallelism: int = 4
    granularity: str = "auto"
    exclude: tuple[str, ...] = ()  # --exclude patterns, passed on to every job
    drift_schedule: str | None = None  # [ci] drift_schedule: a scheduled drift job per account

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise UsageError(
                f"unknown granularity {self.granularity!r}", hint=f"use one of {', '.join(GRANULARITIES)}"
            )
        if self.engine not in ("terraform", "terragrunt"):
            raise UsageError(f"unknown engine {self.engine!r}", hint="use terraform or terragrunt")
        for name in (self.role_variable, self.plan_role_variable):
            if not SAFE_VARIABLE.fullmatch(name):
                raise UsageError(f"{name!r} is not a CI variable name (letters, digits, _)")
        _check(self.region, SAFE_REGION, "region", "use an AWS region name such as us-east-1")
        _check(
            self.branch,
            re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,99}$"),
            "branch",
            "letters, digits, _ . / -",
        )
        _check(self.python_version, re.compile(r"^3\.\d+$"), "python version", "use 3.11, 3.12, ...")
        for version in (self.terraform_version, self.terragrunt_version):
            _check(version, SAFE_VERSION, "version", "use a release number such as 1.0.3")
        for pattern in self.exclude:
            _check(
                pattern,
                re.compile(r"^[A-Za-z0-9_.@+=,*?/-]+$"),
                "--exclude pattern",
                "letters, digits, _ . - / * ?",
            )
        for account in self.approval:
            _check(
                account, re.compile(r"^[A-Za-z0-9_.*?-]+$"), "[ci] approval entry", "account names or globs"
            )
        if self.drift_schedule is not None:
            _check(
                self.drift_schedule,
                CRON,
                "[ci] drift_schedule",
                "a five-field cron expression such as '0 6 * * 1-5'",
            )
        if self.plan_role_name is not None:
            _check(
                self.plan_role_name,
                re.compile(r"^[\w+=,.@-]{1,64}$"),
                "[ci] plan_role_name",
                "an IAM role name",
            )
        _check(
            self.terraform_mirror,
            re.compile(r"^https?://[A-Za-z0-9_.:/%~-]+$"),
            "[ci] terraform_mirror",
            "an http(s) URL",
        )
        for digest in (self.install_sha256, self.terraform_sha256, self.terragrunt_sha256):
            if digest is not None:
                _check(digest, SHA256, "SHA256", "64 lowercase hex digits")

    @classmethod
    def from_settings(
        cls, settings: CiSettings, declared_terraform: str | None = None, **overrides: object
    ) -> CiOptions:
        """The options `[ci]` says, with the CLI's flags (not None) on top; Terraform is the
        version the repo declares (`[engine] terraform_version`), else the one refarch is
        tested with."""
        values: dict[str, object] = {
            "install": settings.install or "",
            "install_sha256": settings.install_sha256,
            "branch": settings.branch,
            "terraform_version": declared_terraform or DEFAULT_CI_TERRAFORM_VERSION,
            "terraform_sha256": settings.terraform_sha256,
            "terraform_mirror": settings.terraform_mirror,
            "python_version": settings.python_version,
            "plan_role_name": settings.plan_role_name,
            "drift_schedule": settings.drift_schedule,
        }
        if settings.approval is not None:
            values["approval"] = settings.approval
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def needs_approval(self, account: str) -> bool:
        return any(fnmatchcase(account, pattern) for pattern in self.approval)

    # -- what every job installs, as shell lines (each emitter adds its own OIDC step) --------
    def install_lines(self) -> list[str]:
        """Install refarch from `install`: a wheel (URL or path) checked against its SHA256, a
        git URL pinned to a commit, or a pinned version. UsageError when it is none of these."""
        spec = self.install
        if not spec:
            raise UsageError(
                "the pipeline needs to know how to install refarch: set [ci] install in refarch.toml",
                hint="refarch is not on PyPI: build a wheel (`make wheel`) and name its https URL or "
                "repo-relative path (with install_sha256), or a git URL at a commit "
                "(git+https://host/org/refarch.git@<40-hex commit>); `refarch new` writes it",
            )
        _check(spec, CI_INSTALL, "[ci] install", "a pip requirement without spaces or shell characters")
        pip = ["python", "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
        if spec.endswith(".whl"):
            if self.install_sha256 is None:
                raise UsageError(
                    f"[ci] install names a wheel ({spec}) without its SHA256",
                    hint="set [ci] install_sha256 = output of `sha256sum` on the wheel",
                )
            if spec.startswith(("https://", "http://")):
                local = f"{TOOLS}/{spec.rsplit('/', 1)[-1]}"
                fetch = [_shell(["curl", "-fsSL", "--retry", "3", "-o", local, spec])]
            elif spec.startswith("/") or ".." in spec.split("/") or not SAFE_PATH.fullmatch(spec):
                raise UsageError(
                    f"[ci] install {spec!r}: a wheel path must be relative to the git root, inside it",
                    hint="commit the wheel in the repo and name its path, or use an https URL",
                )
            else:
                local, fetch = spec, []
            return [
                *fetch,
                f"echo '{self.install_sha256}  {local}' | sha256sum -c -",
                _shell([*pip, f"./{local}" if not local.startswith(".") else local]),
            ]
        if spec.startswith("git+"):
            if not GIT_AT_COMMIT.fullmatch(spec):
                raise UsageError(
                    f"[ci] install {spec!r}: a git URL must be https and pinned to a full commit",
                    hint="git+https://host/org/refarch.git@<40-hex commit>",
                )
            return [_shell([*pip, spec])]
        if not re.fullmatch(r"refarch(\[[a-z,]+\])?==[0-9][0-9A-Za-z.+-]*", spec):
            raise UsageError(
                f"[ci] install {spec!r} is not a pinned refarch version, a wheel or a git URL at a commit",
                hint="for example refarch==0.1.0 (from your own index), dist/refarch-0.1.0-py3-none-any.whl",
            )
        line = [*pip, spec]
        return [_shell(line)]

    def terraform_lines(self) -> list[str]:
        """Download Terraform, check its SHA256 against the sum pinned here, unzip it into the
        job's tools folder (first on PATH)."""
        digest = self.terraform_sha256 or TERRAFORM_SHA256.get((self.terraform_version, "linux_amd64"))
        if digest is None:
            raise UsageError(
                f"no SHA256 is pinned for Terraform {self.terraform_version}",
                hint="set [ci] terraform_sha256 from HashiCorp's terraform_<version>_SHA256SUMS "
                "(its linux_amd64 line), or use Terraform 1.0.3",
            )
        name = f"terraform_{self.terraform_version}_linux_amd64.zip"
        url = f"{self.terraform_mirror.rstrip('/')}/{self.terraform_version}/{name}"
        lines = [
            _shell(["curl", "-fsSL", "--retry", "3", "-o", f"{TOOLS}/{name}", url]),
            f"echo '{digest}  {TOOLS}/{name}' | sha256sum -c -",
            f"python -m zipfile -e {TOOLS}/{name} {TOOLS}/bin/ && chmod +x {TOOLS}/bin/terraform",
        ]
        if self.engine == "terragrunt":
            if self.terragrunt_sha256 is None:
                raise UsageError(
                    "--engine terragrunt needs the SHA256 of the Terragrunt binary",
                    hint="pass --terragrunt-sha256 from the release's SHA256SUMS (terragrunt_linux_amd64)",
                )
            url = (
                "https://github.com/gruntwork-io/terragrunt/releases/download/"
                f"v{self.terragrunt_version}/terragrunt_linux_amd64"
            )
            lines += [
                _shell(["curl", "-fsSL", "--retry", "3", "-o", f"{TOOLS}/bin/terragrunt", url]),
                f"echo '{self.terragrunt_sha256}  {TOOLS}/bin/terragrunt' | sha256sum -c -",
                f"chmod +x {TOOLS}/bin/terragrunt",
            ]
        return lines


@dataclass(frozen=True)
class CiJob:
    """One slice of the plan (an account, or accounts that go together): planned by
    `plan_id`, applied by `id`, on one runner each."""

    id: str  # apply-<x>: safe as a GitHub job id and a GitLab job name
    tier: int
    accounts: tuple[str, ...]
    units: tuple[str, ...]  # in plan order
    includes: tuple[str, ...]  # --include patterns that select exactly `units`
    needs: tuple[str, ...] = ()  # apply job ids this slice waits for

    @property
    def slug(self) -> str:
        return self.id.removeprefix("apply-")

    @property
    def plan_id(self) -> str:
        return f"plan-{self.slug}"

    @property
    def title(self) -> str:
        return f"apply {', '.join(self.accounts)} (tier {self.tier}, {len(self.units)} unit(s))"

    @property
    def environment(self) -> str:
        """The CI environment of the job's accounts (the reviewers and secrets live there); also
        names its resource group: one apply at a time per account, whichever step."""
        return "-".join(self.accounts)


@dataclass(frozen=True)
class CiDriftJob:
    """The scheduled drift check of one account (`[ci] drift_schedule`): `refarch drift` of
    its units, read-only, their dependencies' outputs read, not planned."""

    id: str  # drift-<account>, safe for GitHub and GitLab
    account: str
    units: tuple[str, ...]
    includes: tuple[str, ...]  # folder patterns that select exactly `units`

    @property
    def folder(self) -> str:
        """Its `--out-dir`: the plans, drift.json and summary.md."""
        return f"{DRIFT}/{self.id.removeprefix('drift-')}"


@dataclass(frozen=True)
class CiPipeline:
    """The jobs of a live repo, in tier order, and where the repo sits in the git tree."""

    directory: str  # the live repo relative to the git repository's root, POSIX form
    jobs: tuple[CiJob, ...]
    options: CiOptions
    changed_since: str | None = None  # the pipeline covers only what changed since this ref
    drift: tuple[CiDriftJob, ...] = ()  # one per account when [ci] drift_schedule is set
    warnings: tuple[str, ...] = ()  # the plan's: an --include or --exclude that matches no unit

    def job(self, job_id: str) -> CiJob:
        return next(j for j in self.jobs if j.id == job_id)

    def plans_of(self, job: CiJob) -> str:
        return f"{PLANS}/{job.slug}"

    def _selection(self, job: CiJob) -> list[str]:
        argv: list[str] = []
        for pattern in job.includes:
            argv += ["--include", pattern]
        for pattern in self.options.exclude:
            argv += ["--exclude", pattern]
        return [*argv, "--ignore-dependencies"]

    def plan_argv(self, job: CiJob) -> list[str]:
        """The plan job's command (`--changed-since deployed` is added on pushes)."""
        argv = ["refarch", "plan-all", self.directory, *self._selection(job), "--non-interactive"]
        argv += ["--engine", self.options.engine, "-j", str(self.options.parallelism)]
        return [*argv, "--out-dir", self.plans_of(job), "--report", f"{REPORTS}/{job.plan_id}.json"]

    def apply_argv(self, job: CiJob) -> list[str]:
        """The apply job's command: exactly the plan job's saved plans; a retry continues the
        unfinished run of this job (`--resume auto`)."""
        argv = ["refarch", "apply", self.directory, *self._selection(job)]
        argv += ["--plan-dir", self.plans_of(job), "--planned-only", "--resume", "auto"]
        argv += ["--non-interactive", "--engine", self.options.engine, "-j", str(self.options.parallelism)]
        return [*argv, "--report", f"{REPORTS}/{job.id}.json"]

    def drift_argv(self, job: CiDriftJob) -> list[str]:
        """The drift job's command: exit 0 in sync, 2 drift found, 1 could not tell."""
        argv = ["refarch", "drift", self.directory]
        for pattern in job.includes:
            argv += ["--include", pattern]
        for pattern in self.options.exclude:
            argv += ["--exclude", pattern]
        argv += [
            "--ignore-dependencies",
            "--engine",
            self.options.engine,
            "-j",
            str(self.options.parallelism),
        ]
        return [*argv, "--out-dir", job.folder]

    def review_argv(self, base_ref: str) -> list[str]:
        """The pull request's command: `terraform plan` on what changed since `base_ref`."""
        argv = ["refarch", "plan-all", self.directory, "--changed-since", base_ref]
        for pattern in self.options.exclude:
            argv += ["--exclude", pattern]
        argv += ["--non-interactive", "--engine", self.options.engine, "-j", str(self.options.parallelism)]
        return [*argv, "--out-dir", PLANS, "--report", f"{REPORTS}/plan.json"]

    @property
    def plan_env(self) -> dict[str, str]:
        """What every plan job runs with: no state locks (a cancelled plan strands none; the
        read-only role could not take them), the plan role in each account."""
        env = {"TF_CLI_ARGS_plan": "-lock=false"}
        if self.options.plan_role_name:
            env["REFARCH_ROLE_NAME"] = self.options.plan_role_name
        return env

    @property
    def runs_dir(self) -> str:
        return f"{self.directory}/.refarch/runs/" if self.directory != "." else ".refarch/runs/"


# -- slicing the plan ---------------------------------------------------------------------------
def pipeline(
    plan: Plan, directory: str = ".", options: CiOptions | None = None, changed_since: str | None = None
) -> CiPipeline:
    """Slice an apply plan into CI jobs (see the module docstring)."""
    options = options or CiOptions()
    _check(
        directory,
        re.compile(r"^\.$|" + SAFE_PATH.pattern[1:]),
        "live repo folder",
        "rename it: letters, digits, _ . - /",
    )
    if plan.action != "apply":
        raise UsageError(f"a CI pipeline is built from an apply plan, not {plan.action!r}")
    repo_units = plan.repo.units
    account_tier = {u.account: u.tier for u in plan.units.values()}
    # account -> accounts it depends on (inside the plan), and the tiers in order
    depends: dict[str, set[str]] = {a: set() for a in account_tier}
    for path, planned in plan.units.items():
        for dep in repo_units[path].dependencies:
            if dep in plan.units and plan.units[dep].account != planned.account:
                depends[planned.account].add(plan.units[dep].account)
    tiers = sorted(set(account_tier.values()))
    groups: list[tuple[int, tuple[str, ...]]] = []  # (tier, accounts of one job)
    for tier in tiers:
        in_tier = sorted(a for a, t in account_tier.items() if t == tier)
        groups.extend((tier, g) for g in _job_groups(in_tier, depends, options.granularity))

    ids = _job_ids([group for _, group in groups], tiers=[t for t, _ in groups])
    job_of_account = {a: ids[i] for i, (_, group) in enumerate(groups) for a in group}
    allowed = set(plan.skipped)
    for account in account_tier:
        _check(account, CI_NAME, "account name", "rename the account: letters, digits, _ . -")
    for path in plan.units:
        _check(
            path,
            SAFE_PATH,
            "unit folder",
            "rename the folder (letters, digits, _ . @ + = , -) or --exclude it",
        )
    jobs: list[CiJob] = []
    for index, (tier, accounts) in enumerate(groups):
        units = tuple(p for p, u in plan.units.items() if u.account in accounts)
        previous = [ids[i] for i, (t, _) in enumerate(groups) if t == _previous(tiers, tier)]
        cross = {job_of_account[d] for a in accounts for d in depends[a]} - {ids[index]}
        jobs.append(
            CiJob(
                id=ids[index],
                tier=tier,
                accounts=accounts,
                units=units,
                includes=_includes(units, repo_units, allowed),
                needs=tuple(sorted(set(previous) | cross, key=ids.index)),
            )
        )
    steps = _in_steps(jobs, plan, allowed)
    return CiPipeline(
        directory=directory,
        jobs=_without_implied_needs(steps),
        options=options,
        changed_since=changed_since,
        drift=_drift_jobs(plan, allowed) if options.drift_schedule is not None else (),
        warnings=plan.warnings,
    )


def _drift_jobs(plan: Plan, allowed: set[str]) -> tuple[CiDriftJob, ...]:
    """One drift job per account of the plan, tier by tier, selecting exactly its units."""
    tier = {u.account: u.tier for u in plan.units.values()}
    accounts = sorted(tier, key=lambda a: (tier[a], a))
    ids = _job_ids([(a,) for a in accounts], tiers=[tier[a] for a in accounts], prefix="drift-")
    jobs = []
    for job_id, account in zip(ids, accounts, strict=True):
        units = tuple(p for p, u in plan.units.items() if u.account == account)
        jobs.append(CiDriftJob(job_id, account, units, _includes(units, plan.repo.units, allowed)))
    return tuple(jobs)


def _in_steps(jobs: Sequence[CiJob], plan: Plan, allowed: set[str]) -> list[CiJob]:
    """Split a job whose units depend on each other into steps, one per dependency depth
    (`apply-security`, `apply-security-step-2`, ...): a saved plan is only worth reviewing
    when it was made against its dependencies' real outputs, so a unit's plan job runs after
    the apply of every unit it depends on, in its own job or another's."""
    repo_units = plan.repo.units
    deps = {p: [d for d in repo_units[p].dependencies if d in plan.units] for p in plan.units}
    step_of: dict[str, tuple[str, int]] = {}  # unit -> (job id, depth)
    for job in jobs:
        mine = set(job.units)
        depth: dict[str, int] = {}

        def level(unit: str, mine: set[str] = mine, depth: dict[str, int] = depth) -> int:
            if unit not in depth:
                depth[unit] = 0  # acyclic (the planner refused cycles)
                depth[unit] = 1 + max((level(d) for d in deps[unit] if d in mine), default=0)
            return depth[unit]

        for unit in job.units:
            step_of[unit] = (job.id, level(unit))
    name = {(j, n): j if n == 1 else f"{j}-step-{n}" for j, n in set(step_of.values())}
    # a job that waited for a whole job now waits for its last step (which waits for the others)
    steps = {j.id: name[(j.id, max(n for i, n in step_of.values() if i == j.id))] for j in jobs}
    out: list[CiJob] = []
    for job in jobs:
        levels = sorted({n for j, n in step_of.values() if j == job.id})
        for n in levels:
            units = tuple(u for u in job.units if step_of[u] == (job.id, n))
            wanted = {name[step_of[d]] for u in units for d in deps[u]} - {name[(job.id, n)]}
            touched = {repo_units[u].account for u in units}
            out.append(
                replace(
                    job,
                    id=name[(job.id, n)],
                    accounts=tuple(a for a in job.accounts if a in touched),
                    units=units,
                    includes=_includes(units, repo_units, allowed) if len(levels) > 1 else job.includes,
                    needs=tuple(dict.fromkeys([*(steps[need] for need in job.needs), *sorted(wanted)])),
                )
            )
    return out


def _without_implied_needs(jobs: Sequence[CiJob]) -> tuple[CiJob, ...]:
    """Drop a `needs:` entry that another entry already waits for (transitively)."""
    direct = {j.id: set(j.needs) for j in jobs}
    memo: dict[str, set[str]] = {}

    def behind(job_id: str) -> set[str]:
        if job_id not in memo:
            memo[job_id] = set()  # acyclic: accounts that need each other share one job
            found = set(direct[job_id])
            for need in direct[job_id]:
                found |= behind(need)
            memo[job_id] = found
        return memo[job_id]

    return tuple(
        replace(j, needs=tuple(n for n in j.needs if not any(n in behind(m) for m in j.needs if m != n)))
        for j in jobs
    )


def _previous(tiers: Sequence[int], tier: int) -> int | None:
    index = tiers.index(tier)
    return tiers[index - 1] if index > 0 else None


def _reach(depends: Mapping[str, set[str]], start: str, within: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in depends.get(todo.pop(), set()) & within:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _job_groups(
    accounts: Sequence[str], depends: Mapping[str, set[str]], granularity: str
) -> list[tuple[str, ...]]:
    """The jobs of one tier: accounts whose units depend on each other both ways share a job
    (their jobs would need each other); `auto` makes one job of the whole tier when its
    accounts can only run one after the other anyway (fewer runners, same wall time)."""
    within = set(accounts)
    reach = {a: _reach(depends, a, within) for a in accounts}
    if granularity == "tier" or len(accounts) <= 1:
        return [tuple(accounts)] if accounts else []
    components: list[tuple[str, ...]] = []
    placed: set[str] = set()
    for account in accounts:
        if account in placed:
            continue
        component = tuple(
            a for a in accounts if a == account or (a in reach[account] and account in reach[a])
        )
        placed.update(component)
        components.append(component)
    if granularity == "auto" and len(components) > 1:
        heads = [c[0] for c in components]
        if all(b in reach[a] or a in reach[b] for i, a in enumerate(heads) for b in heads[i + 1 :]):
            return [tuple(accounts)]
    return components


def _job_ids(groups: Sequence[Sequence[str]], tiers: Sequence[int], prefix: str = "apply-") -> list[str]:
    """`apply-<account>`, or `apply-tier-<n>` for a merged job; safe for GitHub and GitLab."""
    ids: list[str] = []
    for accounts, tier in zip(groups, tiers, strict=True):
        raw = accounts[0] if len(accounts) == 1 else f"tier-{tier}"
        if len(accounts) > 1 and sum(t == tier for t in tiers) > 1:
            raw = "-".join(accounts)
        base = prefix + (re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-") or "account")
        name, n = base, 2
        while name in ids:
            name, n = f"{base}-{n}", n + 1
        ids.append(name)
    return ids


def _includes(units: Sequence[str], repo_units: Iterable[str], allowed: set[str]) -> tuple[str, ...]:
    """The fewest folder patterns that select exactly `units` (and, at most, units the plan
    skips anyway): each unit's highest ancestor folder that holds no unit of another job."""
    mine = set(units)
    others = [p for p in repo_units if p not in mine and p not in allowed]
    patterns: list[str] = []
    for path in units:
        parts = path.split("/")
        chosen = path
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if not any(o == folder or o.startswith(folder + "/") for o in others):
                chosen = folder
                break
        if chosen not in patterns and not any(chosen.startswith(p + "/") for p in patterns):
            patterns.append(chosen)
    return tuple(patterns)


def _shell(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def shell(argv: Sequence[str]) -> str:
    """argv as one shell line, each word quoted where needed."""
    return _shell(argv)
