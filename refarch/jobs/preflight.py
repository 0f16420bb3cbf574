"""Preflight: before apply, every AWS resource a unit's inputs name must exist where it runs.

Which inputs are references is data: the CATALOGUE below (variable-name conventions such as
`keypair_name` or `ami_id`, and value shapes such as ARNs and `ami-…`), extended by
`[preflight]` in refarch.toml. Each reference is looked up in the unit's own account and
region through the unit's own role (an ARN: in the account and region it names, when that
account is in the repo). Values that come from a dependency are only known after that
dependency applies: they are reported as not checked, never guessed from mock outputs.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refarch.aws import AWS_EXCEPTIONS, AwsSessions
from refarch.config import evaluate_unit
from refarch.config.values import UNKNOWN_PREFIX, Unknown
from refarch.errors import ConfigError, NoCredentials, RefarchError
from refarch.models import Plan, Repo, Unit
from refarch.patterns import compile_pattern
from refarch.planner import plan as make_plan
from refarch.provision import error_code
from refarch.provision.declared import with_declared
from refarch.repo import load_repo
from refarch.settings import SETTINGS_FILE, Settings, line_of, load_settings

__all__ = [
    "CATALOGUE",
    "Finding",
    "PreflightFailed",
    "PreflightReport",
    "PreflightRequest",
    "Reference",
    "ReferenceRule",
    "find_references",
    "preflight",
    "run_preflight",
]

FOUND, MISSING, NOT_CHECKED = "found", "missing", "not checked"
PREFLIGHT_SCHEMA_VERSION = 1  # of `refarch preflight --json`: schemas/preflight.schema.json


@dataclass(frozen=True)
class ReferenceRule:
    """Inputs that name an AWS resource of `kind`: by input name (globs) or by value shape."""

    kind: str
    inputs: tuple[str, ...] = ()  # fnmatch globs over the input's name
    pattern: str | None = None  # a regex a string value must match (anywhere in the input)

    def names(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, glob) for glob in self.inputs)

    def shapes(self, value: str) -> bool:
        return self.pattern is not None and compile_pattern(self.pattern).match(value) is not None


ARN = r"^arn:aws[a-z-]*:"
CATALOGUE: tuple[ReferenceRule, ...] = (
    ReferenceRule(
        "key-pair",
        inputs=(
            "ssh_key_name",
            "keypair_name",
            "key_pair_name",
            "key_name",
            "*_ssh_key_name",
            "*_keypair_name",
            "*_key_pair_name",
        ),
    ),
    ReferenceRule("ami", inputs=("ami", "ami_id", "*_ami", "*_ami_id"), pattern=r"^ami-[0-9a-f]{8,17}$"),
    ReferenceRule("hosted-zone", inputs=("hosted_zone_id", "*_hosted_zone_id", "route53_zone_id")),
    ReferenceRule("hosted-zone", pattern=ARN + r"route53:::hostedzone/.+$"),
    ReferenceRule("iam-principal", pattern=ARN + r"iam::\d{12}:(user|role|group)/.+$"),
    ReferenceRule("acm-certificate", pattern=ARN + r"acm:[a-z0-9-]+:\d{12}:certificate/.+$"),
    ReferenceRule("secret", pattern=ARN + r"secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$"),
    ReferenceRule("kms-key", pattern=ARN + r"kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$"),
    ReferenceRule("s3-bucket", pattern=ARN + r"s3:::[^/]+$"),
)
KINDS = tuple(dict.fromkeys(rule.kind for rule in CATALOGUE))
# Inputs whose unknown value is reported as not checked even when no rule names them.
REFERENCE_LIKE = ("*_arn", "*_arns")
# What makes each kind of resource; {dir}, {account}, {region} and {unit} are filled in.
REMEDIES = {
    "key-pair": "refarch bootstrap {dir} --accounts {account} --only keypairs",
    "ami": "refarch amis build {dir} --regions {region}{share}",
    "iam-principal": "create it, or apply the unit that does (refarch apply {dir} --include ...)",
    "acm-certificate": "refarch bootstrap {dir} --accounts {account} --only certs",
    "secret": "refarch bootstrap {dir} --accounts {account} --only passwords",
    "hosted-zone": "apply the unit that creates the zone (refarch apply {dir} --include .../route53)",
    "kms-key": "apply the unit that creates the key (refarch apply {dir} --include .../kms-admin)",
    "s3-bucket": "apply the unit that creates the bucket (refarch apply {dir} --include ...)",
}


@dataclass(frozen=True)
class Reference:
    """One input (or one element of it) that names an AWS resource, or may once known."""

    unit: str
    input: str  # the input's name, with [index] / ["key"] for a nested value
    kind: str | None  # None: unknown until a dependency applies, kind not known
    value: str | None  # None: not known before apply
    account: str
    account_id: str | None
    region: str
    unknown: str = ""  # what the value waits for (`dependency.vpc.outputs.vpc_id`)


@dataclass(frozen=True)
class Finding:
    """What preflight found for one reference, and the command that makes a missing one."""

    reference: Reference
    status: str  # found | missing | not checked
    note: str = ""
    remedy: str = ""

    def to_json(self) -> dict[str, Any]:
        ref = self.reference
        return {
            "unit": ref.unit,
            "input": ref.input,
            "kind": ref.kind,
            "value": ref.value,
            "account": ref.account,
            "account_id": ref.account_id,
            "region": ref.region,
            "status": self.status,
            "note": self.note,
            "remedy": self.remedy,
        }


@dataclass(frozen=True)
class PreflightReport:
    """Every reference of the selected units and what was found."""

    findings: tuple[Finding, ...]
    units: tuple[str, ...]

    def having(self, status: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status == status)

    @property
    def missing(self) -> tuple[Finding, ...]:
        return self.having(MISSING)

    @property
    def ok(self) -> bool:
        return not self.missing

    @property
    def exit_code(self) -> int:
        """`refarch preflight`'s: 2 when a reference is missing."""
        return 0 if self.ok else 2

    def to_json(self) -> dict[str, Any]:
        """The `refarch preflight --json` contract (schemas/preflight.schema.json)."""
        return {
            "schema_version": PREFLIGHT_SCHEMA_VERSION,
            "ok": self.ok,
            "units": list(self.units),
            "findings": [f.to_json() for f in self.findings],
        }


class PreflightFailed(RefarchError):
    """Resources the units reference do not exist: each with its unit, input and remedy."""

    exit_code = 2

    def __init__(self, report: PreflightReport) -> None:
        self.report = report
        lines = [f"{len(report.missing)} referenced resource(s) missing:"]
        for finding in report.missing:
            ref = finding.reference
            lines.append(
                f"  {ref.unit}: {ref.input} = {ref.value} ({ref.kind} in {ref.account} "
                f"{ref.account_id} {ref.region}){': ' + finding.note if finding.note else ''}"
            )
        super().__init__("\n".join(lines), hint=report.missing[0].remedy if report.missing else None)


# -- the catalogue, extended by refarch.toml --------------------------------------------------


@dataclass(frozen=True)
class PreflightConfig:
    """`[preflight]`: extra `rules` (kind, inputs, pattern) and input globs to `ignore`."""

    rules: tuple[ReferenceRule, ...] = CATALOGUE
    ignore: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> PreflightConfig:
        """The user's rules (validated with the settings) ahead of the catalogue."""
        section = settings.preflight
        for index, rule in enumerate(section.rules):
            if rule.kind not in KINDS:
                key = f"preflight.rules[{index}].kind"
                raise ConfigError(
                    f"{key} must be one of {', '.join(KINDS)}, not {rule.kind!r}",
                    path=settings.path or SETTINGS_FILE,
                    line=line_of(settings.lines, key),
                )
        rules = tuple(ReferenceRule(r.kind, r.inputs, r.pattern) for r in section.rules)
        return cls(rules=(*rules, *CATALOGUE), ignore=section.ignore)


# -- finding references (pure) ----------------------------------------------------------------


def find_references(
    unit: Unit, rules: Iterable[ReferenceRule] = CATALOGUE, *, region: str, ignore: Iterable[str] = ()
) -> list[Reference]:
    """The references among a unit's inputs, in input order (no AWS call)."""
    rules = tuple(rules)
    skipped = tuple(ignore)
    found: list[Reference] = []

    def add(name: str, value: str | None, kind: str | None, unknown: str = "") -> None:
        found.append(Reference(unit.path, name, kind, value, unit.account, unit.account_id, region, unknown))

    for top, value in unit.inputs.items():
        if any(fnmatch.fnmatchcase(top, glob) for glob in skipped):
            continue
        named = next((r.kind for r in rules if r.names(top)), None)
        for path, leaf in _leaves(top, value):
            reason = _unknown(leaf)
            if reason is not None:
                if named or any(fnmatch.fnmatchcase(top, g) for g in REFERENCE_LIKE):
                    add(path, None, named, reason)
                continue
            if not isinstance(leaf, str) or not leaf:
                continue
            kind = next((r.kind for r in rules if r.shapes(leaf)), None) or named
            if kind is not None:
                add(path, leaf, kind)
    return found


def _unknown(value: Any) -> str | None:
    """What an unknown value waits for (units carry it as "(known after apply: ...)")."""
    if isinstance(value, Unknown):
        return value.reason
    if isinstance(value, str) and value.startswith(UNKNOWN_PREFIX) and value.endswith(")"):
        return value[len(UNKNOWN_PREFIX) : -1]
    return None


def _leaves(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(f'{path}["{key}"]', item)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _leaves(f"{path}[{index}]", item)
    else:
        yield path, value


def unknown_dependency_outputs(unit: Unit) -> dict[str, dict[str, Any]]:
    """Outputs standing in for the dependencies' mocks: every mocked output Unknown, so that
    re-evaluating the unit shows which inputs wait for a dependency."""
    return {
        dep.name: {key: Unknown(f"dependency.{dep.name}.outputs.{key}") for key in dep.mock_outputs}
        for dep in unit.dependency_blocks
        if dep.mock_outputs
    }


# -- looking them up ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PreflightRequest:
    """What `refarch preflight DIR` is asked, one field per flag."""

    directory: str | Path
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    endpoint_url: str | None = None
    profile: str | None = None


def run_preflight(request: PreflightRequest, *, sessions: AwsSessions | None = None) -> PreflightReport:
    """What `refarch preflight DIR` does: the apply plan of the selected units, each of their
    references looked up (see `preflight`); `exit_code` is 2 when one is missing."""
    root = Path(request.directory)
    settings = load_settings(root).with_overrides(endpoint_url=request.endpoint_url, profile=request.profile)
    repo = load_repo(root, settings=settings)
    order = make_plan(repo, "apply", include=request.include, exclude=request.exclude)
    return preflight(order, settings, sessions=sessions)


def preflight(
    plan: Plan,
    settings: Settings | None = None,
    *,
    sessions: AwsSessions | None = None,
    env: Mapping[str, str] | None = None,
) -> PreflightReport:
    """Check every reference of the plan's units in AWS; return what was found.

    Read-only: only Describe/Get/Head calls. A unit's inputs are evaluated again with its
    dependencies' outputs unknown, so a value that is only a mock is never looked up.
    """
    repo = plan.repo
    settings = settings or repo.settings
    config = PreflightConfig.from_settings(settings)
    sessions = sessions or AwsSessions(settings)
    checker = _Checker(repo, with_declared(repo.root, settings, env), sessions)
    findings: list[Finding] = []
    for path in plan.units:
        unit = repo.unit(path)
        if unit.dependency_blocks:
            unit = evaluate_unit(repo, path, outputs=unknown_dependency_outputs(unit), env=env)
        region = unit.region or settings.region
        for ref in find_references(unit, config.rules, region=region, ignore=config.ignore):
            findings.append(checker.check(ref, unit))
    return PreflightReport(tuple(findings), tuple(plan.units))


class _Checker:
    """Looks references up, once each, through the right account's role."""

    def __init__(self, repo: Repo, settings: Settings, sessions: AwsSessions) -> None:
        self.repo = repo
        self.sessions = sessions
        self.accounts = {a.id: a.name for a in repo.accounts if a.id}
        self.keypairs = set(settings.keypairs.names)
        kms = settings.kms_admin
        self.kms_admin = kms.user if kms.makes_user else None
        self.cache: dict[tuple[str | None, str | None, str, str], tuple[str, str]] = {}
        self.guarded: set[tuple[str | None, str | None]] = set()
        self.has_credentials: bool | None = None
        self.lookups: dict[str, Callable[[Callable[[str], Any], str], bool]] = {
            "key-pair": _key_pair,
            "hosted-zone": _hosted_zone,
            "iam-principal": _iam_principal,
            "acm-certificate": lambda client, arn: _exists(
                lambda: client("acm").describe_certificate(CertificateArn=arn), "ResourceNotFoundException"
            ),
            "secret": lambda client, arn: _exists(
                lambda: client("secretsmanager").describe_secret(SecretId=arn), "ResourceNotFoundException"
            ),
            "kms-key": lambda client, arn: _exists(
                lambda: client("kms").describe_key(KeyId=arn), "NotFoundException"
            ),
            "s3-bucket": lambda client, arn: _exists(
                lambda: client("s3").head_bucket(Bucket=arn.rsplit(":", 1)[-1]),
                "404",
                "NoSuchBucket",
                "NotFound",
            ),
        }

    def check(self, ref: Reference, unit: Unit) -> Finding:
        if ref.value is None:
            return Finding(ref, NOT_CHECKED, f"known after apply: {ref.unknown}")
        assert ref.kind is not None
        account_id, region, role = ref.account_id, ref.region, unit.iam_role
        arn = re.match(r"^arn:aws[a-z-]*:([a-z0-9-]+):([a-z0-9-]*):(\d{12})?:", ref.value)
        if arn and arn.group(3) and arn.group(3) != unit.account_id:
            account_id, role = arn.group(3), None
            if account_id not in self.accounts:
                return Finding(ref, NOT_CHECKED, f"account {account_id} is not in the repo")
        if arn and arn.group(2):
            region = arn.group(2)
        name = self.accounts.get(account_id or "", ref.account)
        where = Reference(ref.unit, ref.input, ref.kind, ref.value, name, account_id, region, ref.unknown)
        key = (account_id, role, region, f"{ref.kind}:{ref.value}")
        if key not in self.cache:
            self.cache[key] = self._look_up(where, role, unit)
        status, note = self.cache[key]
        remedy = self._remedy(where) if status == MISSING else ""
        return Finding(where, status, note, remedy)

    def _look_up(self, ref: Reference, role: str | None, unit: Unit) -> tuple[str, str]:
        assert ref.kind is not None and ref.value is not None
        if self.has_credentials is None:  # as the runner: no credentials is a setup error
            self.has_credentials = self.sessions.base().get_credentials() is not None
        if not self.has_credentials:
            raise NoCredentials()
        guard = (ref.account_id, role)
        if guard not in self.guarded:
            session = self.sessions.session(ref.account_id, ref.account, ref.region, role_arn=role)
            self.sessions.check_account(unit.path, ref.account_id, session)
            self.guarded.add(guard)

        def client(service: str) -> Any:
            return self.sessions.client(
                service, ref.account_id, ref.region, account_name=ref.account, role_arn=role
            )

        if ref.kind == "ami":
            return self._ami(client, ref)
        lookup = self.lookups[ref.kind]
        try:
            return (FOUND, "") if lookup(client, ref.value) else (MISSING, "")
        except AWS_EXCEPTIONS as exc:
            return NOT_CHECKED, f"the lookup failed: {str(exc).splitlines()[0]}"

    def _ami(self, client: Callable[[str], Any], ref: Reference) -> tuple[str, str]:
        """Owned by or shared with the unit's account; a shared image is also looked for in its
        owner's account (moto does not show shared images to the account they are shared with)."""
        image = str(ref.value)
        if _image(client("ec2"), image):
            return FOUND, ""
        for account_id, name in self.accounts.items():
            if account_id == ref.account_id:
                continue
            ec2 = self.sessions.client("ec2", account_id, ref.region, account_name=name)
            if not _image(ec2, image, owners=["self"]):
                continue
            permissions = ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")
            allowed = {p.get("UserId") or p.get("Group") for p in permissions.get("LaunchPermissions", [])}
            if ref.account_id in allowed or "all" in allowed:
                return FOUND, f"shared by {name}"
            return MISSING, f"owned by {name} ({account_id}) but not shared with {ref.account}"
        if re.fullmatch(r"ami-0+", image):
            return MISSING, "a placeholder: no AMI was built for this region yet"
        return MISSING, ""

    def _remedy(self, ref: Reference) -> str:
        from refarch.jobs.amis import DEFAULT_ACCOUNT  # noqa: PLC0415 - only for a missing AMI

        values = {"dir": self.repo.root, "account": ref.account, "region": ref.region, "share": ""}
        if ref.account != DEFAULT_ACCOUNT:  # the building account owns its images: nothing to share
            values["share"] = f" --share-with {ref.account}"
        if ref.kind == "key-pair" and ref.value not in self.keypairs:
            return f"add {ref.value} to keypairs in bootstrap.hcl, then " + REMEDIES["key-pair"].format(
                **values
            )
        if (
            ref.kind == "iam-principal"
            and self.kms_admin
            and str(ref.value).endswith(f":user/{self.kms_admin}")
        ):
            return "refarch bootstrap {dir} --accounts {account} --only kms".format(**values)
        if ref.kind == "s3-bucket" and str(ref.value).endswith("-tf-state"):
            return "refarch bootstrap {dir} --accounts {account} --only backend".format(**values)
        return REMEDIES[str(ref.kind)].format(**values)


def _exists(call: Callable[[], Any], *missing: str) -> bool:
    try:
        call()
    except AWS_EXCEPTIONS as exc:
        if error_code(exc) in missing:
            return False
        raise
    return True


def _image(ec2: Any, image: str, owners: list[str] | None = None) -> bool:
    params: dict[str, Any] = {"ImageIds": [image]}
    if owners:
        params["Owners"] = owners
    try:
        return bool(ec2.describe_images(**params)["Images"])
    except AWS_EXCEPTIONS as exc:
        if error_code(exc) in ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"):
            return False
        raise


def _key_pair(client: Callable[[str], Any], name: str) -> bool:
    return _exists(lambda: client("ec2").describe_key_pairs(KeyNames=[name]), "InvalidKeyPair.NotFound")


def _hosted_zone(client: Callable[[str], Any], value: str) -> bool:
    zone = value.rsplit("/", 1)[-1]
    return _exists(lambda: client("route53").get_hosted_zone(Id=zone), "NoSuchHostedZone")


def _iam_principal(client: Callable[[str], Any], arn: str) -> bool:
    kind, _, rest = arn.split(":", 5)[5].partition("/")
    name = rest.rsplit("/", 1)[-1]
    iam = client("iam")
    calls = {
        "user": lambda: iam.get_user(UserName=name),
        "role": lambda: iam.get_role(RoleName=name),
        "group": lambda: iam.get_group(GroupName=name),
    }
    return _exists(calls[kind], "NoSuchEntity")
