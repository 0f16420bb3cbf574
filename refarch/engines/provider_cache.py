"""One provider cache per machine, safe under parallel `terraform init`.

Real repos spend most of `init` unpacking the same providers into every unit. Terraform's
plugin cache (TF_PLUGIN_CACHE_DIR) lets each unit link one shared copy instead, but Terraform
does not lock it: two inits installing the same provider at once can leave a half-written
copy that both then use. refarch puts a readers-writer lock (flock) on the cache: an init
that may install into it holds the lock alone; an init whose provider requirements were
already installed by an earlier init (a marker per requirement set, written after that init
succeeded) shares the lock, so warm inits run in parallel and only link.

The cache is `$TF_PLUGIN_CACHE_DIR` when the user set one, else `[engine] plugin_cache_dir`,
else `$XDG_CACHE_HOME/refarch/plugins` (`~/.cache/refarch/plugins`): one per user and
machine, shared by every repo. It holds executables, so it is trusted only if it is this
user's alone (refarch.files.check_ours). Lock files (`.terraform.lock.hcl`) are part of the
requirement set: a unit that pins other hashes gets its own exclusive first init.

Terraform >= 1.4 takes a provider from the cache only when the lock file already records its
checksum; without a lock file it installs the provider again, into the cache, on every init
(parallel inits then race: "mkdir ...: file exists"). Terraform's documented way out is
`TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE` (any non-empty value): the cached copy is
used as is and the lock file records only this platform's checksum. Its risk is a lock file
unfit for other platforms, and a cache entry trusted without the registry's signed checksums.
refarch accepts both for its own cache: the lock file Terraform writes in refarch's working
copy is never copied back into the repo (a lock file the module ships is still checked), and
the cache is trusted only if it is this user's alone. The user's own value wins; set to ""
(off), an init without a lock file is taken as one that writes (it holds the lock alone).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from refarch.errors import UnreadableFile
from refarch.files import check_ours, read_bounded

LOCK_FILE = ".refarch-lock"
MAY_BREAK_LOCK_FILE = "TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE"
DEPENDENCY_LOCK_FILE = ".terraform.lock.hcl"
WARM_DIR = ".refarch-warm"  # one empty file per requirement set already installed
# A block `required_providers { ... }` (one level of nested braces inside), and the provider
# prefixes of resource and data types (`aws_s3_bucket` -> aws): what decides the providers.
_REQUIRED = re.compile(r"required_providers\s*\{(?:[^{}]|\{[^{}]*\})*\}", re.S)
_TYPED = re.compile(r'^\s*(?:resource|data)\s+"?([A-Za-z0-9]+)_', re.M)
_PROVIDER = re.compile(r'^\s*provider\s+"?([A-Za-z0-9_-]+)"?\s*\{', re.M)
# A module call (two levels of nested braces inside) and its source.
_MODULE = re.compile(
    r'^(\s*module\s+"?[\w-]+"?\s*\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*?\bsource\s*=\s*"([^"]*)"'
    r"(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\})",
    re.M,
)
_JSON_KEYS = ("resource", "provider", "module")
MAX_MODULES = 1000  # folders read for one init's requirements


def cache_dir(env: Mapping[str, str], configured: str | None = None) -> Path:
    """Where the machine's provider cache is (see the module docstring for the order)."""
    if env.get("TF_PLUGIN_CACHE_DIR"):
        return Path(env["TF_PLUGIN_CACHE_DIR"])
    if configured:
        return Path(configured).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "refarch" / "plugins"


def cache_environment(env: Mapping[str, str], configured: str | None = None) -> dict[str, str]:
    """The variables that point Terraform at the machine's cache and let an init without a
    lock file link from it (see the module docstring); the user's own values win."""
    return {
        "TF_PLUGIN_CACHE_DIR": str(cache_dir(env, configured)),
        MAY_BREAK_LOCK_FILE: env.get(MAY_BREAK_LOCK_FILE, "true"),
    }


def init_writes_cache(run_dir: Path, env: Mapping[str, str]) -> bool:
    """Whether an init in `run_dir` installs into the cache even when the providers are there:
    Terraform >= 1.4 with neither a lock file nor leave to break it."""
    return not (run_dir / DEPENDENCY_LOCK_FILE).is_file() and not env.get(MAY_BREAK_LOCK_FILE)


def requirements(run_dir: Path, data_dir: Path | None = None) -> str | None:
    """A digest of what `init` in `run_dir` installs: the required_providers blocks and the
    providers the resources imply of the whole module tree (the root, the local modules it
    calls, recursively, and the modules an earlier init downloaded into `data_dir`), the
    remote module calls not downloaded yet (whose providers are unknown, so they count), its
    lock file and the CLI configuration's installation methods; None for a module tree that
    needs no provider (nothing to lock for)."""
    parts: list[str] = []
    todo = [*_downloaded_modules(run_dir, data_dir), run_dir]
    seen: set[Path] = set()
    while todo and len(seen) < MAX_MODULES:
        folder = Path(os.path.normpath(todo.pop()))
        if folder in seen:
            continue
        seen.add(folder)
        for path in sorted(folder.glob("*.tf")) + sorted(folder.glob("*.tf.json")):
            text = path.read_text(encoding="utf-8", errors="replace")
            parts += _REQUIRED.findall(text)
            parts += sorted(set(_TYPED.findall(text)) | set(_PROVIDER.findall(text)))
            if path.name.endswith(".tf.json") and any(f'"{k}"' in text for k in _JSON_KEYS):
                parts.append(text)  # JSON syntax: kept whole (its modules locked for) rather than parsed
            for call, source in _MODULE.findall(text):
                if source.startswith(("./", "../")) and (folder / source).is_dir():
                    todo.append(folder / source)
                else:  # a remote module (or a missing folder): what it installs is unknown
                    parts.append(call)
    if not parts:
        return None
    lock = run_dir / DEPENDENCY_LOCK_FILE
    if lock.is_file():
        parts.append(lock.read_text(encoding="utf-8", errors="replace"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _downloaded_modules(run_dir: Path, data_dir: Path | None) -> list[Path]:
    """The folders of the modules an earlier `init` installed (TF_DATA_DIR/modules/modules.json,
    whose `Dir` is relative to the folder init ran in), sorted."""
    manifest = (data_dir or run_dir / ".terraform") / "modules" / "modules.json"
    try:
        entries = json.loads(read_bounded(manifest)).get("Modules") or []
    except (UnreadableFile, ValueError, AttributeError):
        return []
    dirs = {entry.get("Dir") for entry in entries if isinstance(entry, dict)}
    return sorted(run_dir / d for d in dirs if isinstance(d, str) and d not in ("", "."))


@contextlib.contextmanager
def init_lock(
    cache: Path, key: str | None, cli_config: str = "", *, writes: bool = False
) -> Iterator[list[bool]]:
    """Hold the cache's lock for one `init`: shared when `key`'s providers are known to be in
    the cache and the init only links from it, else exclusive (`writes`: `init -upgrade`,
    which may install newer ones, or an init that installs into the cache even when the
    providers are there). The caller sets `ok[0] = True` after a successful init, which marks
    `key` as installed. A module tree without providers takes no lock."""
    ok = [False]
    # made for every init, providers or not: Terraform warns on every command that it cannot
    # open a TF_PLUGIN_CACHE_DIR that does not exist
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    if key is None:
        yield ok
        return
    check_ours(cache)
    key = hashlib.sha256(f"{key}\n{cli_config}".encode()).hexdigest()[:24]
    marker = cache / WARM_DIR / key
    fd = os.open(cache / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        exclusive = writes or not marker.exists()
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield ok
        if exclusive and ok[0]:
            marker.parent.mkdir(exist_ok=True, mode=0o700)
            marker.touch()
    finally:
        os.close(fd)  # releases the flock
