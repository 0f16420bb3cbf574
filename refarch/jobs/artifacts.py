"""Build the architecture's Lambda packages and Docker images, upload them, feed their names.

A live repo's `artifacts.hcl` declares what to build (rendered by `refarch new`):

    locals {
      builder = ["docker"]             # optional: the image builder's argv (docker-compatible)
      lambda = {
        hello = { source = "functions/hello", build = ["python3", "build.py"],
                  package = "dist/package.zip", accounts = ["dev", "prod"] }
      }
      images = { sample-app = { context = "images/sample-app" } }
    }

A Lambda package is named by the hash of its source folder (`lambda/<name>/<hash>.zip`): a
source whose hash is recorded is not built again; a failed build changes nothing, so units keep
the last good package. Each package is uploaded to the artifact bucket of every listed account
(`<org>-<account>-<primary region>-artifacts`, made here when missing). An image is built from
its context with the builder, tagged `src-<hash>` and pushed to the shared-services ECR
repository of the same name (the ecr unit's). The keys, tags and digests go to
`artifacts.auto.hcl`, which the units read (as amis.auto.hcl feeds AMI ids), and to
`.refarch/artifacts.json`. Every process starts through refarch.exec.process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from refarch.aws import AwsSessions
from refarch.config.evaluate import Loader, read_config
from refarch.errors import ConfigError, ToolNotFound, UsageError
from refarch.exec.process import ProcessResult, run_process
from refarch.files import local_dir, write_atomic
from refarch.hcl_text import hcl_value
from refarch.provision import error_code
from refarch.settings import Settings, load_settings

DECLARATION = "artifacts.hcl"
AUTO_HCL = "artifacts.auto.hcl"
RECORD = "artifacts.json"  # under .refarch/
DEFAULT_BUILDER = ("docker",)
SHARED_ACCOUNT = "shared-services"
SECRET_PREFIXES = ("AWS_", "TF_VAR_")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_SKIPPED_DIRS = {".git", "__pycache__", ".venv", "node_modules"}

Kind = Literal["lambda", "image"]


class Runner(Protocol):
    """The process seam: refarch.exec.process.run_process or a fake with its signature."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | Path,
        env: Mapping[str, str],
        on_line: Callable[[str, str], None] | None = ...,
        stdin_data: str | None = ...,
    ) -> ProcessResult: ...


Status = Literal["built", "unchanged", "failed"]


@dataclass(frozen=True)
class ArtifactEvent:
    """Something that happened to one artifact, for the CLI (or a platform script) to show."""

    kind: Kind
    name: str
    message: str


@dataclass(frozen=True)
class ArtifactResult:
    """One Lambda package or image: what it is now, and whether this run built it."""

    kind: Kind
    name: str
    status: Status
    source_hash: str
    reference: str  # the package key, or the image tag
    digest: str = ""  # package sha256, or image digest
    uploaded_to: tuple[str, ...] = ()  # buckets, or the repository URI
    error: str = ""


@dataclass(frozen=True)
class ArtifactsReport:
    """The result of `build_artifacts`: every artifact, and the file the units read."""

    results: tuple[ArtifactResult, ...]
    auto_hcl: Path

    @property
    def ok(self) -> bool:
        return all(r.status != "failed" for r in self.results)

    @property
    def exit_code(self) -> int:
        """`refarch artifacts build`'s: 1 when a build failed."""
        return 0 if self.ok else 1


@dataclass(frozen=True)
class ArtifactsBuildRequest:
    """What `refarch artifacts build DIR [NAME...]` is asked."""

    directory: str | Path
    names: tuple[str, ...] = ()  # only these artifacts (all when empty)


@dataclass(frozen=True)
class _Declared:
    builder: tuple[str, ...]
    lambdas: Mapping[str, Mapping[str, Any]]
    images: Mapping[str, Mapping[str, Any]]
    org: str
    region: str
    accounts: Mapping[str, str]


@dataclass
class _State:
    """artifacts.auto.hcl's values (the last good ones) and the record of source hashes."""

    packages: dict[str, str] = field(default_factory=dict)
    images: dict[str, dict[str, str]] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)  # "lambda/<name>" -> source hash


@dataclass(frozen=True)
class _Job:
    """What every build of one run shares."""

    root: Path
    declared: _Declared
    state: _State
    sessions: AwsSessions
    runner: Runner
    env: Mapping[str, str]
    emit: Callable[[ArtifactEvent], None]


def source_hash(folder: Path, exclude: Sequence[Path] = ()) -> str:
    """SHA-256 over every file's relative path and bytes, in sorted order (hidden and cache
    folders and `exclude` left out), so the same source has the same name on any machine."""
    digest = hashlib.sha256()
    for path in _files(folder, [folder / e for e in exclude]):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _files(folder: Path, exclude: Sequence[Path]) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if any(p in _SKIPPED_DIRS or p.startswith(".") for p in parts):
            continue
        if any(path == e or e in path.parents for e in exclude) or path.is_symlink() or not path.is_file():
            continue
        yield path


def build_artifacts(
    root: str | Path,
    *,
    names: Sequence[str] | None = None,
    settings: Settings | None = None,
    sessions: AwsSessions | None = None,
    runner: Runner = run_process,
    env: Mapping[str, str] | None = None,
    on_event: Callable[[ArtifactEvent], None] | None = None,
) -> ArtifactsReport:
    """Build what artifacts.hcl declares (only `names` when given), upload, and record.

    A failed build is reported (status "failed") and leaves that artifact's last good value
    in artifacts.auto.hcl; the others still build. Raises ConfigError for a bad artifacts.hcl
    and ToolNotFound when images are declared and the builder is not installed.
    """
    root = Path(root).resolve()
    env = dict(os.environ) if env is None else dict(env)
    settings = settings or load_settings(root, env)
    sessions = sessions or AwsSessions(settings)
    emit = on_event or (lambda _event: None)
    declared = _declared(root, env)
    unknown = sorted(set(names or ()) - set(declared.lambdas) - set(declared.images))
    if unknown:
        raise UsageError(
            f"not in {DECLARATION}: {', '.join(unknown)}",
            hint=f"one of: {', '.join(sorted({*declared.lambdas, *declared.images}))}",
        )
    state = _read_state(root)
    # The user's build tools get the user's environment (DOCKER_HOST, npm's ...), without
    # AWS credentials or Terraform variables: a build needs neither.
    child_env = {k: v for k, v in env.items() if not k.startswith(SECRET_PREFIXES)}
    images = {n: s for n, s in declared.images.items() if names is None or n in names}
    job = _Job(root, declared, state, sessions, runner, child_env, emit)
    results: list[ArtifactResult] = []
    try:
        for name, spec in declared.lambdas.items():
            if names is None or name in names:
                results.append(_lambda(job, name, spec))
        for name, spec in images.items():
            results.append(_image(job, name, spec))
    finally:  # what was uploaded or pushed before an error is recorded all the same
        auto = _write_state(root, state)
    return ArtifactsReport(tuple(results), auto)


def run_artifacts_build(
    request: ArtifactsBuildRequest,
    *,
    on_event: Callable[[ArtifactEvent], None] | None = None,
    sessions: AwsSessions | None = None,
    runner: Runner = run_process,
) -> ArtifactsReport:
    """What `refarch artifacts build DIR [NAME...]` does (see `build_artifacts`); the report's
    `exit_code` is 1 when a build failed."""
    names = request.names or None
    return build_artifacts(
        request.directory, names=names, sessions=sessions, runner=runner, on_event=on_event
    )


# -- Lambda packages ---------------------------------------------------------------------------


def _lambda(job: _Job, name: str, spec: Mapping[str, Any]) -> ArtifactResult:
    root, declared, state, emit = job.root, job.declared, job.state, job.emit
    source = _inside(root, spec["source"], f"lambda.{name}.source")
    package = _inside(source, spec["package"], f"lambda.{name}.package")
    output = package.parent if package.parent != source else package  # not part of the source
    digest = source_hash(source, exclude=[output.relative_to(source)])
    key = f"lambda/{name}/{digest}.zip"
    buckets = {a: f"{declared.org}-{a}-{declared.region}-artifacts" for a in spec["accounts"]}
    clients = {
        a: job.sessions.client("s3", declared.accounts[a], declared.region, account_name=a) for a in buckets
    }
    missing = [a for a in buckets if not _has_object(clients[a], buckets[a], key)]
    if state.hashes.get(f"lambda/{name}") == digest and state.packages.get(name) == key and not missing:
        emit(ArtifactEvent("lambda", name, f"unchanged: {key}"))
        return ArtifactResult("lambda", name, "unchanged", digest, key, uploaded_to=tuple(buckets.values()))
    emit(ArtifactEvent("lambda", name, f"building in {source.relative_to(root)}: {' '.join(spec['build'])}"))
    package.unlink(missing_ok=True)  # a build that makes nothing must not ship the last one
    result = _run(job, spec["build"], source, "lambda", name)
    if not result.ok or not package.is_file():
        why = (
            result.output_tail[-2000:] if not result.ok else f"the build left no {package.relative_to(root)}"
        )
        kept = state.packages.get(name, "nothing")
        emit(ArtifactEvent("lambda", name, f"build failed; units keep {kept}"))
        return ArtifactResult("lambda", name, "failed", digest, kept, error=why)
    body = package.read_bytes()
    sha = hashlib.sha256(body).hexdigest()
    for account, bucket in buckets.items():
        _ensure_bucket(clients[account], bucket, declared.region)
        clients[account].put_object(Bucket=bucket, Key=key, Body=body, Metadata={"package-sha256": sha})
        emit(ArtifactEvent("lambda", name, f"uploaded s3://{bucket}/{key}"))
    state.packages[name] = key
    state.hashes[f"lambda/{name}"] = digest
    return ArtifactResult("lambda", name, "built", digest, key, sha, tuple(buckets.values()))


def _has_object(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            return False  # a missing bucket or key both mean "upload it"
        raise
    return True


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    """The account's artifact bucket: private, encrypted, versioned (made once)."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except Exception as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    args: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**args)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


# -- Docker images -----------------------------------------------------------------------------


def _image(job: _Job, name: str, spec: Mapping[str, Any]) -> ArtifactResult:
    context = _inside(job.root, spec["context"], f"images.{name}.context")
    digest = source_hash(context)
    tag = f"src-{digest[:20]}"
    last = job.state.images.get(name, {})
    if last.get("tag") == tag and last.get("digest"):
        job.emit(ArtifactEvent("image", name, f"unchanged: {tag}"))
        return ArtifactResult("image", name, "unchanged", digest, tag, last["digest"])
    builder = job.declared.builder
    if shutil.which(builder[0], path=job.env.get("PATH")) is None:  # only when one must be built
        raise ToolNotFound(
            builder[0],
            hint=f"install Docker, or set `builder` in {DECLARATION} to a docker-compatible command "
            '(e.g. ["podman"]); Lambda packages need no builder: `refarch artifacts build DIR NAME`',
        )
    uri, user, password = _ecr_login(job, name)
    reference = f"{uri}:{tag}"
    steps: list[tuple[list[str], str | None]] = [
        ([*builder, "login", "--username", user, "--password-stdin", uri.split("/", 1)[0]], password),
        ([*builder, "build", "--tag", reference, str(context)], None),
        ([*builder, "push", reference], None),
    ]
    job.emit(ArtifactEvent("image", name, f"building {reference}"))
    pushed: ProcessResult | None = None
    for argv, stdin in steps:
        pushed = _run(job, argv, job.root, "image", name, stdin)
        if not pushed.ok:
            kept = last.get("tag", "nothing")
            job.emit(ArtifactEvent("image", name, f"{argv[len(builder)]} failed; units keep {kept}"))
            return ArtifactResult(
                "image", name, "failed", digest, last.get("tag", ""), error=pushed.output_tail[-2000:]
            )
    found = _DIGEST.search(pushed.output_tail if pushed else "")
    if found is None:
        error = "the push printed no `digest: sha256:...`"
        return ArtifactResult("image", name, "failed", digest, last.get("tag", ""), error=error)
    job.state.images[name] = {"tag": tag, "digest": found.group(1)}
    job.emit(ArtifactEvent("image", name, f"pushed {reference} ({found.group(1)})"))
    return ArtifactResult("image", name, "built", digest, tag, found.group(1), (uri,))


def _ecr_login(job: _Job, name: str) -> tuple[str, str, str]:
    """The shared-services ECR repository `name`'s URI, and a registry login (user, password)."""
    declared = job.declared
    if SHARED_ACCOUNT not in declared.accounts:
        raise ConfigError(f"images need the {SHARED_ACCOUNT} account (its ECR)", path=job.root / "common.hcl")
    ecr = job.sessions.client(
        "ecr", declared.accounts[SHARED_ACCOUNT], declared.region, account_name=SHARED_ACCOUNT
    )
    try:
        uri = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryUri"]
    except Exception as exc:
        if "RepositoryNotFound" not in str(exc):
            raise
        raise UsageError(
            f"image {name}: the {SHARED_ACCOUNT} account has no ECR repository {name!r}",
            hint="apply the ecr unit first (refarch apply DIR/shared-services), and list the image in its "
            "repository_names",
        ) from None
    token = ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
    return str(uri), user, password


# -- shared ------------------------------------------------------------------------------------


def _run(
    job: _Job, argv: Sequence[str], cwd: Path, kind: Kind, name: str, stdin: str | None = None
) -> ProcessResult:
    def line(_stream: str, text: str) -> None:
        job.emit(ArtifactEvent(kind, name, text))

    if stdin is None:
        return job.runner(argv, cwd=cwd, env=job.env, on_line=line)
    return job.runner(argv, cwd=cwd, env=job.env, stdin_data=stdin)  # a secret: its echo is not shown


def _inside(base: Path, relative: Any, where: str) -> Path:
    path = (base / str(relative)).resolve()
    if not isinstance(relative, str) or not path.is_relative_to(base):
        raise ConfigError(f"local.{where} must be a path inside {base}", path=DECLARATION)
    return path


def declared_lambdas(root: str | Path, env: Mapping[str, str]) -> list[str]:
    """The Lambda packages artifacts.hcl declares (ConfigError/UsageError as build_artifacts)."""
    return list(_declared(Path(root).resolve(), env).lambdas)


def _declared(root: Path, env: Mapping[str, str]) -> _Declared:
    path = root / DECLARATION
    if not path.is_file():
        raise UsageError(
            f"{root} has no {DECLARATION}", hint="render the repo with `refarch new`, or write one"
        )
    loader = Loader(root, env=dict(env))
    values = read_config(loader, path, root)[0].get("locals") or {}
    common = read_config(loader, root / "common.hcl", root)[0].get("locals") or {}
    lambdas = values.get("lambda") or {}
    images = values.get("images") or {}
    builder = tuple(values.get("builder") or DEFAULT_BUILDER)
    if (
        not isinstance(lambdas, dict)
        or not isinstance(images, dict)
        or not all(isinstance(b, str) for b in builder)
    ):
        raise ConfigError("lambda and images must be objects, builder a list of strings", path=path)
    accounts = dict(common.get("accounts") or {})
    for name, spec in lambdas.items():
        missing = [k for k in ("source", "build", "package", "accounts") if k not in (spec or {})]
        if not _NAME.match(name) or missing:
            raise ConfigError(f"lambda.{name}: needs {', '.join(missing) or 'a lower-case name'}", path=path)
        unknown = [a for a in spec["accounts"] if a not in accounts]
        if unknown or not isinstance(spec["build"], list) or not spec["build"]:
            raise ConfigError(
                f"lambda.{name}: build must be a non-empty argv list; accounts must be in common.hcl "
                f"(unknown: {', '.join(unknown) or 'none'})",
                path=path,
            )
    for name, spec in images.items():
        if not _NAME.match(name) or "context" not in (spec or {}):
            raise ConfigError(f"images.{name}: needs a lower-case name and a context", path=path)
    return _Declared(
        builder, lambdas, images, str(common.get("org")), str(common.get("primary_region")), accounts
    )


def _read_state(root: Path) -> _State:
    state = _State()
    auto = root / AUTO_HCL
    if auto.is_file():
        values = read_config(Loader(root, env={}), auto, root)[0].get("locals") or {}
        state.packages = {k: str(v) for k, v in (values.get("lambda_packages") or {}).items()}
        state.images = {k: dict(v) for k, v in (values.get("images") or {}).items()}
    record = local_dir(root, create=False) / RECORD
    if record.is_file():
        try:
            state.hashes = dict(json.loads(record.read_text(encoding="utf-8")).get("hashes", {}))
        except (ValueError, AttributeError):
            state.hashes = {}
    return state


def _write_state(root: Path, state: _State) -> Path:
    text = (
        "# Deployment packages and images, written by `refarch artifacts build` (artifacts.hcl says\n"
        "# what it builds). Units read these locals; a failed build keeps the last good value.\n"
        "locals {\n"
        f"  lambda_packages = {hcl_value(state.packages, 2)}\n\n"
        f"  images = {hcl_value(state.images, 2)}\n"
        "}\n"
    )
    write_atomic(root / AUTO_HCL, text, mode=0o644)
    record = {"version": 1, "hashes": state.hashes, "packages": state.packages, "images": state.images}
    write_atomic(local_dir(root) / RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return root / AUTO_HCL
