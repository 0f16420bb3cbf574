"""The terraform engine's working folder per unit: module copy, generated files, backend, tfvars.

This is what Terragrunt does in `.terragrunt-cache`, done by refarch so that plain Terraform
(or OpenTofu) can run a terragrunt.hcl unit: copy the module `source`, write the `generate`
blocks, write the backend configuration from `remote_state`, write `inputs` as
`terraform.tfvars.json`. Everything here is plain file work; the only process it may start is
`git` (through `refarch.exec.process`) to clone a remote module source.

Layout under `work_root` (default `<repo>/.refarch/work`, mode 0700):
```
<slug of the unit path>/
  module/            copy of the source root (the part before `//`)
  module/<subdir>/   where terraform runs: generated files and terraform.tfvars.json
  backend.hcl        the partial backend configuration (`init -backend-config=`)
  tfdata/            TF_DATA_DIR: kept between runs so a second init is quick
.sources/            git clones, one per (url, ref)
```
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refarch.errors import ConfigError, ModuleSourceError, StateAtRisk
from refarch.exec.process import ProcessResult, run_process
from refarch.files import chmod as chmod_no_follow
from refarch.files import remove
from refarch.hcl_text import hcl_value
from refarch.models import Generate, RemoteState, Unit

TFVARS_FILE = "terraform.tfvars.json"
BACKEND_CONFIG_FILE = "backend.hcl"
BACKEND_STUB_FILE = "refarch_backend.tf.json"
EMULATOR_OVERRIDE_FILE = "refarch_emulator_override.tf"
EMULATOR_OVERRIDE_HEADER = "# Written by refarch for an AWS emulator at a localhost endpoint: S3 path style\n"
MODULE_DIR = "module"
DATA_DIR = "tfdata"
SOURCES_DIR = ".sources"
# Never copied from a module source: caches and state of other tools, and our own work tree.
COPY_IGNORE = (".git", ".terraform", ".terragrunt-cache", ".refarch", "*.tfstate", "*.tfstate.*")

# Terraform's own copies of a state: what it writes when it cannot save to the backend, and
# local state. refarch never deletes a folder holding one (see find_state_files).
STATE_FILES = ("errored.tfstate", "terraform.tfstate", "terraform.tfstate.backup")
LOCAL_STATE_FILE = "terraform.tfstate"  # <work>/<unit>/: a unit's local state, kept across runs

_SCHEMES = ("git::", "hg::", "s3::", "gcs::", "http://", "https://", "tfr://", "file://")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# A `variable "name" {` block header at the start of a line (the label may be unquoted).
_VARIABLE_HEADER = re.compile(r'^\s*variable\s+"?([A-Za-z_][A-Za-z0-9_-]*)"?\s*\{', re.MULTILINE)
_AWS_PROVIDER_HEADER = re.compile(r'^\s*provider\s+"?aws"?\s*\{', re.MULTILINE)
_ALIAS = re.compile(r'^\s*alias\s*=\s*"([^"]*)"', re.MULTILINE)
_BACKEND_HEADER = re.compile(r'^\s*backend\s+"?[A-Za-z0-9_-]+"?\s*\{', re.MULTILINE)


# -- module sources ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ModuleSource:
    """A parsed `terraform { source = ... }`: where the module tree is and which folder of it.

    `root` is a local path (as written, maybe relative to the unit) or a git URL that `git
    clone` understands; `subdir` is the part after `//` (empty when absent); `ref` is the
    `?ref=` query (a tag, branch or commit; ignored for local paths, which have no versions).
    """

    kind: str  # "local" | "git"
    root: str
    subdir: str = ""
    ref: str | None = None


def parse_source(source: str) -> ModuleSource:
    """Split a Terraform/Terragrunt module source into root, `//subdir` and `?ref=`.

    Understood: local paths (`../modules//vpc`, `/abs/modules//vpc?ref=v1`), `git::` URLs
    (`git::https://host/org/repo.git//path?ref=v1`, `git::git@host:org/repo.git//path`),
    `file://` git URLs, bare `github.com/org/repo//path` and `git@host:org/repo.git`.
    Anything else (registry `tfr://`, `s3::`, archives over http) is a ConfigError: refarch
    does not fetch those; `--source` can point at a local copy instead.
    """
    text = source.strip()
    if not text:
        raise ConfigError("empty terraform source")
    body, ref = _split_query(text)
    kind = "local"
    if body.startswith("git::"):
        kind, body = "git", body[len("git::") :]
    elif body.startswith(("file://", "git@")) or body.endswith(".git") or ".git//" in body:
        kind = "git"
    elif body.startswith(("github.com/", "gitlab.com/", "bitbucket.org/")):
        kind = "git"
        host_path, _, _ = body.partition("//")
        rest = body[len(host_path) :]
        body = f"https://{host_path.removesuffix('.git')}.git{rest}"
    elif body.startswith(_SCHEMES) or re.match(r"^[a-z0-9]+::", body):
        raise ConfigError(
            f"terraform source {source!r} is not supported by the terraform engine",
            hint="use a local path or a git URL, or pass --source LOCAL_MODULES_DIR",
        )
    root, subdir = _split_subdir(body)
    if not root:
        raise ConfigError(f"terraform source {source!r} has no path before '//'")
    return ModuleSource(kind=kind, root=root, subdir=subdir.strip("/"), ref=ref)


def _split_query(text: str) -> tuple[str, str | None]:
    body, _, query = text.partition("?")
    ref = None
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        if key == "ref" and value:
            ref = value
    return body, ref


def _split_subdir(body: str) -> tuple[str, str]:
    """go-getter's rule: the first `//` after any `scheme://` separates root and subdir."""
    start = body.find("://")
    start = start + 3 if start >= 0 else 0
    index = body.find("//", start)
    if index < 0:
        return body, ""
    return body[:index], body[index + 2 :]


# -- the backend -------------------------------------------------------------------------------
def terraform_dialect(version: str) -> str:
    """`"legacy"` for Terraform < 1.6 (flat `endpoint`, `force_path_style`), else `"modern"`
    (`endpoints = {...}`, `use_path_style`): the S3 backend renamed them in 1.6 (OpenTofu too)."""
    match = re.match(r"v?(\d+)\.(\d+)", version.strip())
    if not match:
        return "legacy"
    major, minor = int(match.group(1)), int(match.group(2))
    return "modern" if (major, minor) >= (1, 6) else "legacy"


def backend_settings(
    remote_state: RemoteState, endpoint_url: str | None, *, dialect: str = "legacy"
) -> dict[str, Any]:
    """The backend arguments: `remote_state.config` as is, plus the endpoint overrides.

    The overrides are added only for the `s3` backend when an endpoint is set (moto,
    LocalStack, VPC endpoints), and never replace a value the unit sets itself. Terraform 1.0
    ignores AWS_ENDPOINT_URL, so the backend must be told explicitly.
    """
    config = dict(remote_state.config)
    if remote_state.backend != "s3" or not endpoint_url:
        return config
    overrides: dict[str, Any]
    if dialect == "modern":
        overrides = {
            "endpoints": {
                "s3": endpoint_url,
                "dynamodb": endpoint_url,
                "sts": endpoint_url,
                "iam": endpoint_url,
            },
            "use_path_style": True,
            "skip_requesting_account_id": True,
        }
    else:
        overrides = {
            "endpoint": endpoint_url,
            "dynamodb_endpoint": endpoint_url,
            "sts_endpoint": endpoint_url,
            "iam_endpoint": endpoint_url,
            "force_path_style": True,
        }
    overrides.update(
        skip_credentials_validation=True,
        skip_metadata_api_check=True,
        skip_region_validation=True,
    )
    for key, value in overrides.items():
        config.setdefault(key, value)
    return config


def hcl_attributes(config: Mapping[str, Any], indent: str = "") -> str:
    """`name = value` lines, sorted, for a backend block or a `-backend-config` file."""
    lines = []
    for key in sorted(config):
        if not _IDENT.match(key):
            raise ConfigError(f"backend setting {key!r} is not a valid attribute name")
        lines.append(f"{indent}{key} = {hcl_value(config[key], inline=True)}")
    return "\n".join(lines) + "\n"


def backend_block(backend: str, config: Mapping[str, Any], *, json_syntax: bool = False) -> str:
    """A complete `terraform { backend "x" { ... } }` file (HCL, or JSON for `.tf.json`)."""
    if json_syntax:
        return json.dumps({"terraform": {"backend": {backend: dict(config)}}}, indent=2) + "\n"
    body = hcl_attributes(config, indent="    ") if config else ""
    return f'terraform {{\n  backend "{backend}" {{\n{body}  }}\n}}\n'


# -- generated files ---------------------------------------------------------------------------
MAX_GENERATED_FILE_BYTES = 16 << 20  # a generate block's contents (a file of configuration)


def write_generated(run_dir: Path, block: Generate, *, unit: str) -> Path | None:
    """Write one `generate` block into the working folder, honouring `if_exists`.

    The module copy is fresh on every run, so a file already there came from the module:
    `overwrite_terragrunt` and `error` refuse it (as Terragrunt does for files it did not
    write), `skip` keeps it, `overwrite` replaces it.
    """
    if block.disable:
        return None
    size = len(block.contents.encode("utf-8", errors="replace"))
    if size > MAX_GENERATED_FILE_BYTES:
        raise ConfigError(
            f'unit {unit}: generate "{block.name}" would write {size} bytes to {block.path}; '
            f"at most {MAX_GENERATED_FILE_BYTES >> 20} MiB are generated into one file",
        )
    target = _inside(run_dir, block.path, unit=unit, what=f'generate "{block.name}"')
    if target.exists():
        if block.if_exists == "skip":
            return None
        if block.if_exists != "overwrite":
            raise ConfigError(
                f'unit {unit}: generate "{block.name}" would overwrite {block.path}, '
                "which the module itself contains",
                hint='rename the generated file, or set if_exists = "overwrite" or "skip"',
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(block.contents, encoding="utf-8")
    return target


def _inside(base: Path, relative: str, *, unit: str, what: str) -> Path:
    target = (base / relative).resolve()
    if not target.is_relative_to(base.resolve()):
        raise ConfigError(
            f"unit {unit}: {what} writes to {relative}, outside the module's working folder",
            hint="use a path relative to the module folder",
        )
    return target


# -- inputs ------------------------------------------------------------------------------------
def declared_variables(module_dir: Path) -> set[str]:
    """Names of the variables the module declares (its `.tf` and `.tf.json` files).

    A line scan for `variable "x" {` headers, not an HCL parse: a false positive (the text in
    a comment) only costs Terraform's "undeclared variable" warning; real declarations are
    always block headers on their own line.
    """
    names: set[str] = set()
    for path in sorted(module_dir.glob("*.tf")):
        names.update(_VARIABLE_HEADER.findall(path.read_text(encoding="utf-8", errors="replace")))
    for path in sorted(module_dir.glob("*.tf.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        variables = document.get("variable", {}) if isinstance(document, dict) else {}
        if isinstance(variables, dict):
            names.update(variables)
    return names


def declares_backend(module_dir: Path) -> bool:
    """True when the module's own files already hold a `backend` block."""
    for path in sorted(module_dir.glob("*.tf")):
        if _BACKEND_HEADER.search(path.read_text(encoding="utf-8", errors="replace")):
            return True
    for path in sorted(module_dir.glob("*.tf.json")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if '"backend"' in text:
            return True
    return False


def write_tfvars(run_dir: Path, inputs: Mapping[str, Any]) -> tuple[Path, tuple[str, ...]]:
    """Write the inputs the module declares to terraform.tfvars.json (mode 0600).

    Inputs the module does not declare are left out, and returned: Terragrunt passes inputs
    as TF_VAR_* variables, which Terraform ignores silently when undeclared, while a tfvars
    file makes Terraform 1.0 warn once per undeclared value (and live repos routinely merge
    account/region locals into every unit's inputs). The file may hold secrets, so it is
    created 0600 and never logged.
    """
    declared = declared_variables(run_dir)
    kept = {name: value for name, value in inputs.items() if name in declared}
    dropped = tuple(sorted(set(inputs) - declared))
    path = run_dir / TFVARS_FILE
    _write_private(path, json.dumps(kept, indent=2, sort_keys=True, default=str) + "\n")
    return path, dropped


def _write_private(path: Path, text: str) -> None:
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


# -- the working folder ------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkDir:
    """A prepared working folder: where to run terraform and what to give it."""

    root: Path
    run_dir: Path
    data_dir: Path
    backend_config: Path | None  # passed as `init -backend-config=FILE`, when refarch wrote one
    tfvars: Path
    dropped_inputs: tuple[str, ...]  # inputs the module does not declare (left out)


def unit_slug(unit_path: str) -> str:
    """A flat, readable, collision-free folder name for a unit path."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", unit_path.strip("/")).strip("_.")
    digest = hashlib.sha256(unit_path.encode()).hexdigest()[:8]
    return f"{readable[:80] or 'root'}-{digest}"


GitFetcher = Callable[[ModuleSource, Path, Mapping[str, str]], Path]  # (source, dir, env) -> clone


def resolve_source_root(
    source: ModuleSource,
    *,
    unit_dir: Path,
    work_root: Path,
    source_override: Path | None,
    fetch_git: GitFetcher,
    env: Mapping[str, str],
    unit: str,
) -> Path:
    """The local folder holding the source root: the override, a local path, or a git clone."""
    if source_override is not None:
        root = Path(source_override).expanduser().resolve()
    elif source.kind == "git":
        try:
            root = fetch_git(source, work_root / SOURCES_DIR, env)
        except ModuleSourceError as exc:
            raise ModuleSourceError(unit, exc.source, exc.detail, hint=exc.hint) from None
    else:
        path = Path(source.root).expanduser()
        root = (path if path.is_absolute() else unit_dir / path).resolve()
    if not root.is_dir():
        raise ModuleSourceError(
            unit,
            str(source_override or source.root),
            f"{root} is not a folder",
            hint="fix terraform.source in the unit, or the --source folder",
        )
    return root


def prepare_workdir(
    unit: Unit,
    *,
    repo_root: Path,
    work_root: Path,
    inputs: Mapping[str, Any],
    source_override: Path | None = None,
    endpoint_url: str | None = None,
    dialect: str = "legacy",
    fetch_git: GitFetcher | None = None,
    env: Mapping[str, str] | None = None,
) -> WorkDir:
    """Build the unit's working folder from scratch (the tfdata/ folder is kept).

    Without `terraform.source` the unit folder itself is the module, as with Terragrunt.
    """
    unit_dir = (repo_root / unit.path).resolve()
    fetcher = fetch_git or GitCloner().fetch
    local = ModuleSource(kind="local", root=str(unit_dir))
    source = parse_source(unit.source) if unit.source else local
    src_root = resolve_source_root(
        source,
        unit_dir=unit_dir,
        work_root=work_root,
        source_override=source_override,
        fetch_git=fetcher,
        env=env or {},
        unit=unit.path,
    )
    root = work_root / unit_slug(unit.path)
    module = _fresh_module(unit, work_root, root, src_root)
    run_dir = _inside(module, source.subdir or ".", unit=unit.path, what="the source //subdir")
    if not run_dir.is_dir():
        raise ModuleSourceError(
            unit.path,
            unit.source or str(unit_dir),
            f"folder {source.subdir!r} does not exist in {src_root}",
            hint="fix the part after '//' in terraform.source",
        )
    for block in unit.generate:
        write_generated(run_dir, block, unit=unit.path)
    backend_config = _write_backend(unit, run_dir, root, endpoint_url, dialect)
    write_emulator_override(run_dir, endpoint_url)
    tfvars, dropped = write_tfvars(run_dir, inputs)
    data_dir = root / DATA_DIR
    data_dir.mkdir(exist_ok=True)
    return WorkDir(
        root=root,
        run_dir=run_dir,
        data_dir=data_dir,
        backend_config=backend_config,
        tfvars=tfvars,
        dropped_inputs=dropped,
    )


def _fresh_module(unit: Unit, work_root: Path, root: Path, src_root: Path) -> Path:
    """The unit's working folder `root` (0700, ours) with a fresh copy of its module source;
    an old copy is removed first, unless it holds state files Terraform did not save."""
    work_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root.mkdir(exist_ok=True, mode=0o700)
    chmod_no_follow(root, 0o700)  # a symlink planted here is refused, never followed
    module = root / MODULE_DIR
    if os.path.lexists(module):
        stranded = find_state_files(module)
        if stranded:
            raise StateAtRisk(unit.path, stranded)
        remove(module)  # a symlink inside (or the folder itself) is unlinked, never followed
    shutil.copytree(src_root, module, ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True)
    return module


def write_emulator_override(run_dir: Path, endpoint_url: str | None) -> Path | None:
    """With an emulator at a hostname endpoint (`http://localhost:4566`), the AWS provider
    addresses buckets as virtual hosts (`bucket.localhost`), which the emulator does not
    answer, and it takes path-style addressing only from its configuration (no environment
    variable): an `_override.tf` adds `s3_use_path_style` to every `aws` provider
    configuration of the folder, the default one and each alias (a unit's generated
    `provider "aws" { alias = "us_east_1" }` included). Only for `localhost` endpoints (an IP
    address is path-style already; a real endpoint is left alone), and one override block per
    configuration the folder has: Terraform refuses an override without its base block."""
    host = _hostname(endpoint_url)
    if host != "localhost" and not host.endswith(".localhost"):
        return None
    aliases: set[str] = set()
    for path in sorted([*run_dir.glob("*.tf"), *run_dir.glob("*.tf.json")]):
        aliases |= aws_provider_aliases(path)
    if not aliases:
        return None
    blocks = []
    for alias in sorted(aliases):  # "" (the default configuration) first
        line = f"  alias             = {hcl_value(alias)}\n" if alias else ""
        blocks.append(f'provider "aws" {{\n{line}  s3_use_path_style = true\n}}\n')
    path = run_dir / EMULATOR_OVERRIDE_FILE
    path.write_text(EMULATOR_OVERRIDE_HEADER + "\n".join(blocks), encoding="utf-8")
    return path


def _hostname(url: str | None) -> str:
    from urllib.parse import urlsplit  # noqa: PLC0415

    try:
        return (urlsplit(url or "").hostname or "").lower()
    except ValueError:
        return ""


def aws_provider_aliases(path: Path) -> set[str]:
    """The `aws` provider configurations a Terraform file declares, by alias ("" for the
    default one); none for an override file, which is no base block."""
    name = path.name.removesuffix(".json").removesuffix(".tf")
    if name == "override" or name.endswith("_override"):
        return set()
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.name.endswith(".json"):
        return _json_aws_aliases(text)
    aliases = set()
    for match in _AWS_PROVIDER_HEADER.finditer(text):
        depth, end = 1, match.end()
        while depth and end < len(text):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        alias = _ALIAS.search(text[match.end() : end])
        aliases.add(alias.group(1) if alias else "")
    return aliases


def _json_aws_aliases(text: str) -> set[str]:
    """The aliases of `"provider": {"aws": {...} | [{...}, ...]}` in Terraform's JSON syntax."""
    try:
        document = json.loads(text)
    except ValueError:
        return set()  # Terraform reports the broken file itself
    providers = document.get("provider") if isinstance(document, dict) else None
    configs = providers.get("aws") if isinstance(providers, dict) else None
    if isinstance(configs, dict):
        configs = [configs]
    if not isinstance(configs, list):
        return set()
    return {str(c.get("alias") or "") for c in configs if isinstance(c, dict)}


def _write_backend(
    unit: Unit, run_dir: Path, root: Path, endpoint_url: str | None, dialect: str
) -> Path | None:
    """Write the backend: a generated file when `remote_state.generate` asks for one (as
    Terragrunt does), else a partial configuration for `init -backend-config=`; in that case
    a module without its own `backend` block gets an empty one, or Terraform would silently
    keep the state locally."""
    remote = unit.remote_state
    if remote is None:
        if not declares_backend(run_dir):  # local state lives beside the module copy, not in it
            local = {"path": str(root / LOCAL_STATE_FILE)}
            (run_dir / BACKEND_STUB_FILE).write_text(backend_block("local", local, json_syntax=True))
        return None
    config = backend_settings(remote, endpoint_url, dialect=dialect)
    if remote.generate:
        name = str(remote.generate.get("path", "backend.tf"))
        block = Generate(
            name="remote_state",
            path=name,
            contents=backend_block(remote.backend, config, json_syntax=name.endswith(".json")),
            if_exists=str(remote.generate.get("if_exists", "overwrite_terragrunt")),
        )
        write_generated(run_dir, block, unit=unit.path)
        return None
    if not declares_backend(run_dir):
        stub = backend_block(remote.backend, {}, json_syntax=True)
        (run_dir / BACKEND_STUB_FILE).write_text(stub, encoding="utf-8")
    partial = root / BACKEND_CONFIG_FILE
    _write_private(partial, hcl_attributes(config))
    return partial


def find_state_files(folder: Path) -> list[Path]:
    """Terraform state files under `folder` (symlinks not followed, .terraform/ skipped)."""
    found: list[Path] = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if d != ".terraform"]
        found += [Path(current) / name for name in files if name in STATE_FILES]
    return sorted(found)


# -- git ---------------------------------------------------------------------------------------
class GitCloner:
    """Clones git module sources once per (url, ref) and reuses the clone.

    `git` runs with prompts off and a connect timeout, so an unreachable URL fails fast with
    a clear ModuleSourceError instead of hanging on a password prompt.
    """

    def __init__(self, git: str = "git") -> None:
        self.git = git
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def fetch(self, source: ModuleSource, sources_dir: Path, env: Mapping[str, str]) -> Path:
        """The folder of a clone of `source.root` at `source.ref` (cloned on first use)."""
        git_env = {
            **env,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=10",
        }
        key = hashlib.sha256(f"{source.root}\n{source.ref or ''}".encode()).hexdigest()[:16]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            target = sources_dir / key
            if (target / ".git").is_dir():
                return target
            sources_dir.mkdir(parents=True, exist_ok=True)
            partial = sources_dir / f"{key}.partial"
            remove(partial)
            self._git(source, ["clone", "--quiet", source.root, str(partial)], sources_dir, git_env)
            if source.ref:
                self._git(
                    source, ["-C", str(partial), "checkout", "--quiet", source.ref], sources_dir, git_env
                )
            partial.rename(target)
            return target

    def _git(
        self, source: ModuleSource, args: Iterable[str], cwd: Path, env: Mapping[str, str]
    ) -> ProcessResult:
        result = run_process([self.git, *args], cwd=cwd, env=env)
        if not result.ok:
            raise ModuleSourceError(
                None,
                f"{source.root}{'?ref=' + source.ref if source.ref else ''}",
                result.stderr_tail.strip() or f"git exited with {result.returncode}",  # all of it
                hint="check the URL, the ref and your network/SSH access, "
                "or pass --source LOCAL_MODULES_DIR to use a local copy",
            )
        return result
