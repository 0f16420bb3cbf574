"""Render live-templates/ into a new infrastructure-live repo: the only jinja2 importer."""

from __future__ import annotations

import re
import shutil
import tempfile
import tomllib
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from refarch.errors import ConfigError, UsageError
from refarch.hcl_text import hcl_string, hcl_value
from refarch.resources import data_dir
from refarch.settings import CI_INSTALL, SHA256

TEMPLATES_DIR = data_dir("live-templates")
MANIFEST = "units.toml"
# Each flavour's module folder in this project; `refarch new` copies it to `<repo>/modules`.
FLAVOURS = {"aws": data_dir("modules"), "demo": data_dir("modules-demo")}
FIXED_ROLES = ("security", "shared-services", "logs")
APP_ROLE = "app"
REGION_SCOPES = ("primary", "all")
ROLE_NAME = "OrganizationAccountAccessRole"
AMI_PLACEHOLDER = "ami-00000000000000000"
PACKAGE_PLACEHOLDER = "unbuilt.zip"  # artifacts.auto.hcl before `refarch artifacts build`
IMAGE_PLACEHOLDER = "latest"
SOURCES = "sources"  # live-templates/sources/: copied into the repo as they are (.j2: rendered)
# `${dirname(find_in_parent_folders("root.hcl"))}`: the repo root, from any unit's folder.
REPO_ROOT_EXPR = '${dirname(find_in_parent_folders("root.hcl"))}'

_NAME = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}$")
_URL = re.compile(r"^([a-z0-9]+::|[a-z][a-z0-9+.-]*://)")
MAX_ORG = 16
MAX_ACCOUNT_NAME = 24
MAX_BUCKET = 63


# What a kind may require: the `--domain` argument, or a `logs` account in --accounts.
OPTIONAL_ARGUMENTS = ("domain", "logs")


@dataclass(frozen=True)
class DependencySpec:
    """One `dependency` of a unit kind: on `kind`, in the account with `role` (None: the same)."""

    name: str
    kind: str
    role: str | None = None


@dataclass(frozen=True)
class UnitKind:
    """A manifest entry: a kind of unit, the module it deploys, and where it goes."""

    name: str
    description: str
    module: str
    roles: tuple[str, ...]
    regions: str  # "primary" or "all"
    dependencies: tuple[DependencySpec, ...] = ()
    mock_outputs: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()  # arguments without which the kind is not rendered


@dataclass(frozen=True)
class Manifest:
    """live-templates/units.toml, validated."""

    kinds: Mapping[str, UnitKind]
    required_roles: tuple[str, ...]
    ami_images: tuple[str, ...]
    functions: tuple[str, ...] = ()  # Lambda sources under functions/ (artifacts.hcl)
    images: tuple[str, ...] = ()  # Docker build contexts under images/ (artifacts.hcl)


@dataclass(frozen=True)
class LiveAccount:
    """An account of the repo being rendered; `index` is its position on the command line."""

    name: str
    id: str
    role: str
    index: int


def account_role(name: str) -> str:
    """The role of an account: its own name for security/shared-services/logs, else `app`."""
    return name if name in FIXED_ROLES else APP_ROLE


def load_manifest(templates_dir: Path = TEMPLATES_DIR) -> Manifest:
    """Read and check units.toml: known roles and scopes, dependencies on known kinds."""
    path = templates_dir / MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("the unit manifest is missing", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None

    def fail(detail: str) -> ConfigError:
        return ConfigError(detail, path=path, hint="see the comment at the top of units.toml")

    roles = (*FIXED_ROLES, APP_ROLE)
    kinds: dict[str, UnitKind] = {}
    for name, entry in dict(data.get("kinds", {})).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("module"), str):
            raise fail(f"[kinds.{name}] needs a `module` string")
        kind_roles = tuple(entry.get("roles", ()))
        if not kind_roles or not set(kind_roles) <= set(roles):
            raise fail(f"[kinds.{name}] roles must be a non-empty subset of {list(roles)}")
        scope = entry.get("regions", "primary")
        if scope not in REGION_SCOPES:
            raise fail(f"[kinds.{name}] regions must be one of {list(REGION_SCOPES)}")
        requires = tuple(entry.get("requires", ()))
        if not set(requires) <= set(OPTIONAL_ARGUMENTS):
            raise fail(f"[kinds.{name}] requires must be a subset of {list(OPTIONAL_ARGUMENTS)}")
        deps = []
        for dep_name, target in dict(entry.get("dependencies", {})).items():
            role, _, kind = str(target).rpartition(":")
            if role and role not in FIXED_ROLES:
                raise fail(f"[kinds.{name}] dependency {dep_name}: {role!r} is not one account")
            deps.append(DependencySpec(dep_name, kind, role or None))
        kinds[name] = UnitKind(
            name=name,
            description=str(entry.get("description", name)),
            module=entry["module"],
            roles=kind_roles,
            regions=scope,
            dependencies=tuple(deps),
            mock_outputs=dict(entry.get("mock_outputs", {})),
            requires=requires,
        )
    for spec in kinds.values():
        for dep in spec.dependencies:
            if dep.kind not in kinds:
                raise fail(f"[kinds.{spec.name}] depends on unknown kind {dep.kind!r}")
    return Manifest(
        kinds=kinds,
        required_roles=tuple(data.get("required_roles", ())),
        ami_images=tuple(data.get("ami_images", ())),
        functions=tuple(data.get("functions", ())),
        images=tuple(data.get("images", ())),
    )


def module_source(module: str, modules_source: str | None) -> str:
    """The inside of a unit's `terraform.source` string for `module`.

    Default: the repo's own `modules/` folder, found from any unit with find_in_parent_folders
    (no absolute path, so the repo can move). A URL gets `//module` before its `?ref=`; a local
    path gets `/module` (a relative one is taken from the repo root).
    """
    if modules_source is None:
        return f"{REPO_ROOT_EXPR}/modules/{module}"
    if _URL.match(modules_source):
        base, _, query = modules_source.partition("?")
        after_scheme = base.split("::", 1)[-1].split("://", 1)[-1]
        base = f"{base.rstrip('/')}{'/' if '//' in after_scheme else '//'}{module}"
        return hcl_string(base + (f"?{query}" if query else ""))
    path = f"{modules_source.rstrip('/')}/{module}"
    if Path(modules_source).is_absolute():
        return hcl_string(path)
    return f"{REPO_ROOT_EXPR}/{hcl_string(path)}"


def _check_arguments(
    org: str,
    accounts: Mapping[str, str],
    regions: Sequence[str],
    domain: str,
    flavour: str,
    required_roles: Sequence[str],
) -> None:
    hint_accounts = "for example: --accounts security=111111111111,shared-services=222222222222"
    if flavour not in FLAVOURS:
        raise UsageError(f"unknown flavour {flavour!r}", hint=f"one of: {', '.join(FLAVOURS)}")
    if not (_NAME.match(org) and 2 <= len(org) <= MAX_ORG and "--" not in org):
        raise UsageError(
            f"organisation name {org!r} is not valid",
            hint=f"2 to {MAX_ORG} lowercase letters, digits and single hyphens, starting with "
            "a letter (it prefixes every bucket name)",
        )
    if not accounts:
        raise UsageError("no accounts given", hint=hint_accounts)
    for name, account_id in accounts.items():
        if not (_NAME.match(name) and len(name) <= MAX_ACCOUNT_NAME and "--" not in name):
            raise UsageError(
                f"account name {name!r} is not valid",
                hint=f"up to {MAX_ACCOUNT_NAME} lowercase letters, digits and single hyphens, "
                "starting with a letter",
            )
        if not _ACCOUNT_ID.match(account_id):
            raise UsageError(
                f"account {name}: {account_id!r} is not an AWS account ID (12 digits)",
                hint=hint_accounts,
            )
    ids = list(accounts.values())
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise UsageError(f"account ID(s) used twice: {', '.join(twice)}", hint=hint_accounts)
    missing = [role for role in required_roles if role not in accounts]
    if missing:
        raise UsageError(f"missing account(s): {', '.join(missing)}", hint=hint_accounts)
    if not regions:
        raise UsageError("no regions given", hint="for example: --regions us-east-1,us-west-2")
    for region in regions:
        if not _REGION.match(region):
            raise UsageError(f"{region!r} is not an AWS region name", hint="e.g. us-east-1")
    if len(set(regions)) != len(regions):
        raise UsageError("a region is given twice")
    if len(accounts) * len(regions) > 256:
        raise UsageError("too many accounts x regions: each gets its own 10.N.0.0/16 VPC")
    longest = max(f"{org}-{a}-{r}-tf-state" for a in accounts for r in regions)
    if len(longest) > MAX_BUCKET:
        raise UsageError(
            f"state bucket name {longest!r} would be longer than {MAX_BUCKET} characters",
            hint="use a shorter --org or shorter account names",
        )
    if not _DOMAIN.match(domain):
        raise UsageError(f"{domain!r} is not a domain name", hint="e.g. acme.com")


@dataclass(frozen=True)
class _Unit:
    account: LiveAccount
    region: str
    kind: UnitKind

    @property
    def path(self) -> str:
        return f"{self.account.name}/{self.region}/{self.kind.name}"


def _layout(
    manifest: Manifest, accounts: Sequence[LiveAccount], regions: Sequence[str], given: Iterable[str] = ()
) -> list[_Unit]:
    """Every unit to render, in account, region, manifest order; dependencies checked. A kind
    that requires an optional argument (`--domain`) is rendered only when it was `given`."""
    units = [
        _Unit(account, region, kind)
        for account in accounts
        for region in regions
        for kind in manifest.kinds.values()
        if account.role in kind.roles
        and (kind.regions == "all" or region == regions[0])
        and set(kind.requires) <= set(given)
    ]
    paths = {unit.path for unit in units}
    for unit in units:
        for dep in _dependencies(unit.kind, manifest, given):
            target = _dependency_path(unit, dep, manifest, regions[0])
            if target not in paths:
                raise UsageError(
                    f"{unit.path} needs {target} (dependency {dep.name!r} of kind "
                    f"{unit.kind.name!r} in {MANIFEST}), which would not be rendered",
                    hint=f"add the {dep.role or unit.account.role} account, or change {MANIFEST}",
                )
    return units


def _dependencies(kind: UnitKind, manifest: Manifest, given: Iterable[str]) -> list[DependencySpec]:
    """The kind's dependencies, without those on a kind not rendered for want of an optional
    argument (the alb units' zone comes only with `--domain`; their templates test `given`)."""
    return [dep for dep in kind.dependencies if set(manifest.kinds[dep.kind].requires) <= set(given)]


def _dependency_path(unit: _Unit, dep: DependencySpec, manifest: Manifest, primary: str) -> str:
    target = manifest.kinds[dep.kind]
    account = dep.role or unit.account.name
    region = unit.region if target.regions == "all" else primary
    return f"{account}/{region}/{dep.kind}"


def _config_path(kind: UnitKind, dep: DependencySpec, manifest: Manifest, primary: str) -> str:
    """The dependency's config_path as written in _envcommon (shared by every account)."""
    if dep.role is None:
        if manifest.kinds[dep.kind].regions == "all" or kind.regions == "primary":
            return f"../{dep.kind}"
        return f"../../{primary}/{dep.kind}"
    region = "${local.aws_region}" if manifest.kinds[dep.kind].regions == "all" else primary
    return f"{REPO_ROOT_EXPR}/{dep.role}/{region}/{dep.kind}"


class _Renderer:
    """One jinja2 environment over the templates; every failure names the template and line."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,  # noqa: S701 - renders HCL, not HTML: escaping would corrupt it
        )
        self.env.filters["hcl"] = hcl_value

    def exists(self, name: str) -> bool:
        return (self.templates_dir / name).is_file()

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"template syntax error: {exc.message}",
                path=exc.filename or self.templates_dir / name,
                line=exc.lineno,
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(
                f"template {exc.name} not found (needed by {name})", path=self.templates_dir
            ) from None
        except (jinja2.TemplateError, TypeError) as exc:
            path, line = self._where(exc, name)
            raise ConfigError(
                f"template {name} failed: {exc}",
                path=path,
                line=line,
                hint="every variable a template uses must be in the render context",
            ) from None

    def _where(self, exc: BaseException, name: str) -> tuple[Path, int | None]:
        """The innermost template frame of the traceback (jinja2 maps frames to templates)."""
        root = str(self.templates_dir.resolve())
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename and str(Path(frame.filename).resolve()).startswith(root):
                return Path(frame.filename), frame.lineno
        return self.templates_dir / name, None


def _output_name(template: Path) -> str:
    name = template.name.removesuffix(".j2")
    return "." + name.removeprefix("dot-") if name.startswith("dot-") else name


def _templates_in(templates_dir: Path, folder: str) -> Iterator[tuple[str, str]]:
    """(template name, output file name) for each template of a folder, sorted."""
    for path in sorted((templates_dir / folder).glob("*.j2")):
        yield f"{folder}/{path.name}", _output_name(path)


def render_files(
    *,
    org: str,
    accounts: Mapping[str, str],
    regions: Sequence[str],
    domain: str | None = None,
    modules_source: str | None = None,
    flavour: str = "aws",
    templates_dir: Path = TEMPLATES_DIR,
    ci_install: str | None = None,
    ci_install_sha256: str | None = None,
) -> dict[str, str]:
    """Every file of the live repo (POSIX path -> text), without the modules; writes nothing."""
    manifest = load_manifest(templates_dir)
    regions = list(regions)
    given = (["domain"] if domain else []) + (["logs"] if "logs" in accounts else [])
    domain = domain or f"{org}.internal"
    _check_arguments(org, accounts, regions, domain, flavour, manifest.required_roles)
    if ci_install is not None and not CI_INSTALL.fullmatch(ci_install):
        raise UsageError(
            f"--ci-install {ci_install!r} is not a pip requirement refarch can put in CI",
            hint="a wheel's https URL or repo-relative path, or git+https://host/org/refarch.git@<commit>",
        )
    if ci_install_sha256 is not None and not SHA256.fullmatch(ci_install_sha256):
        raise UsageError("--ci-install-sha256 must be 64 lowercase hex digits (sha256sum of the wheel)")
    live_accounts = [
        LiveAccount(name, account_id, account_role(name), index)
        for index, (name, account_id) in enumerate(accounts.items())
    ]
    units = _layout(manifest, live_accounts, regions, given)
    has_apps = any(a.role == APP_ROLE for a in live_accounts)
    renderer = _Renderer(templates_dir)
    primary = regions[0]
    base: dict[str, Any] = {
        "org": org,
        "domain": domain,
        "dns_domains": [domain] if "domain" in given else [],  # bootstrap.hcl: the zone to find and import
        "flavour": flavour,
        "given": given,  # the optional arguments given: templates test `"domain" in given`
        "role_name": ROLE_NAME,
        "regions": regions,
        "primary_region": primary,
        "ci_install": ci_install,
        "ci_install_sha256": ci_install_sha256,
        "account_ids": dict(accounts),
        "app_accounts": [a.name for a in live_accounts if a.role == APP_ROLE],
        # bootstrap.hcl: the names bootstrap makes and the units use (one source of truth).
        "keypair_names": {"openvpn": f"{org}-openvpn", "default": f"{org}-default"},
        "kms_admin_user": f"{org}-kms-admin",
        # What the app accounts' units consume (aurora, alb-public/-internal, static-website);
        # nothing without an app account, so every declared thing has a consumer.
        "passwords": ["master_password"] if has_apps else [],
        "certificates": {
            # alb-public / alb-internal of each app account: *.<account>.<domain> and
            # *.internal.<account>.<domain>, which cover their records (<region>.<account>...).
            "internal": [
                name
                for a in live_accounts
                if a.role == APP_ROLE
                for name in (f"*.{a.name}.{domain}", f"*.internal.{a.name}.{domain}")
            ],
            "cloudfront": [f"*.{domain}"] if has_apps else [],
        },
        "amis": {image: dict.fromkeys(regions, AMI_PLACEHOLDER) for image in manifest.ami_images},
        # artifacts.hcl / artifacts.auto.hcl: what `refarch artifacts build` builds and feeds.
        "lambda_packages": {name: f"lambda/{name}/{PACKAGE_PLACEHOLDER}" for name in manifest.functions},
        "functions": list(manifest.functions),
        "images": {name: {"tag": IMAGE_PLACEHOLDER, "digest": ""} for name in manifest.images},
        "modules_note": (
            f"`{modules_source}`"
            if modules_source
            else f"`modules/` in this repo (copied from refarch's {FLAVOURS[flavour].name}/)"
        ),
        "accounts": [
            {**vars(a), "units": [u.path.split("/", 1)[1] for u in units if u.account == a]}
            for a in live_accounts
        ],
    }
    files: dict[str, str] = {}
    for template, output in _templates_in(templates_dir, "repo"):
        files[output] = renderer.render(template, base)
    for source in sorted(p for p in (templates_dir / SOURCES).rglob("*") if p.is_file()):
        relative = source.relative_to(templates_dir / SOURCES).as_posix()
        if source.suffix == ".j2":
            files[relative.removesuffix(".j2")] = renderer.render(f"{SOURCES}/{relative}", base)
        else:
            files[relative] = source.read_text(encoding="utf-8")
    for account in live_accounts:
        context = {**base, "account": account}
        for template, output in _templates_in(templates_dir, "account"):
            files[f"{account.name}/{output}"] = renderer.render(template, context)
        for index, region in enumerate(regions):
            if not any(u.account == account and u.region == region for u in units):
                continue
            region_context = {**context, "region": {"name": region, "index": index}}
            for template, output in _templates_in(templates_dir, "region"):
                files[f"{account.name}/{region}/{output}"] = renderer.render(template, region_context)
    for kind in dict.fromkeys(u.kind.name for u in units):
        spec = manifest.kinds[kind]
        template = f"_envcommon/{kind}.hcl.j2"
        if not renderer.exists(template):
            raise ConfigError(
                f"unit kind {kind!r} has no template {template}",
                path=templates_dir / MANIFEST,
                hint=f"add {templates_dir / template} or remove the kind from {MANIFEST}",
            )
        dependencies = [
            {
                "name": dep.name,
                "config_path": _config_path(spec, dep, manifest, primary),
                "mock_outputs": manifest.kinds[dep.kind].mock_outputs,
            }
            for dep in _dependencies(spec, manifest, given)
        ]
        files[f"_envcommon/{kind}.hcl"] = renderer.render(
            template,
            {
                **base,
                "kind": spec,
                "dependencies": dependencies,
                "module_source": module_source(spec.module, modules_source),
            },
        )
    for unit in units:
        template = f"units/{unit.kind.name}.hcl.j2"
        if not renderer.exists(template):
            template = "units/_unit.hcl.j2"
        files[f"{unit.path}/terragrunt.hcl"] = renderer.render(
            template,
            {
                **base,
                "account": unit.account,
                "region": {"name": unit.region, "index": regions.index(unit.region)},
                "kind": unit.kind,
            },
        )
    return dict(sorted(files.items()))


def render_live_repo(
    target: str | Path,
    *,
    org: str,
    accounts: Mapping[str, str],
    regions: Sequence[str],
    domain: str | None = None,
    modules_source: str | None = None,
    flavour: str = "aws",
    force: bool = False,
    templates_dir: Path = TEMPLATES_DIR,
    ci_install: str | None = None,
    ci_install_sha256: str | None = None,
) -> list[Path]:
    """Render a complete infrastructure-live repo into `target`; return the files written.

    Refuses a non-empty `target` unless `force` (then rendered files replace theirs and other
    files stay). Everything is rendered into a temporary folder next to `target` first, so a
    bad template or argument leaves nothing half-written. Without `modules_source`, the
    flavour's modules are copied to `<target>/modules` and the units point there.
    """
    target = Path(target)
    if target.is_symlink():  # render into the folder the link names, keeping the link
        target = target.resolve()
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise UsageError(
            f"{target} is not empty",
            hint="choose a new or empty folder, or pass --force to overwrite the rendered files",
        )
    files = render_files(
        org=org,
        accounts=accounts,
        regions=regions,
        domain=domain,
        modules_source=modules_source,
        flavour=flavour,
        templates_dir=templates_dir,
        ci_install=ci_install,
        ci_install_sha256=ci_install_sha256,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if modules_source is None:
            shutil.copytree(
                FLAVOURS[flavour],
                staging / "modules",
                ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"),
            )
        written = sorted(p.relative_to(staging) for p in staging.rglob("*") if p.is_file())
        staging.chmod(0o755)
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        if not target.exists():
            staging.rename(target)
        else:
            for relative_path in written:
                (target / relative_path).parent.mkdir(parents=True, exist_ok=True)
                (staging / relative_path).replace(target / relative_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [target / p for p in written]
