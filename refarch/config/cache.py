"""The on-disk unit cache: an unchanged repo loads without parsing a single file.

Each unit is stored with what its evaluation consulted: the files it read (by sha256), the
env vars it consulted (hashed values) and the paths it probed (exists or not). The cache file
holds one manifest of all of those; a load checks the manifest once, and a unit is reused
when none of what it consulted changed, so the cache is content-addressed in effect.

A file whose status (mtime, ctime, size, inode) is the one the manifest noted is unchanged
without reading it; the manifest notes a file's status only when the file was last changed
(ctime) more than two seconds before the load that read it began, so a change made during or
right after that load always shows in its status. Otherwise the file is read and hashed.

The file is marshal data (plain dicts, lists and strings: fast to load, and unlike pickle it
runs no code); its name carries the Python version because marshal's format may change.
It is authenticated: an HMAC-SHA256 with a per-user key (0600, under $XDG_CONFIG_HOME/refarch
or ~/.config/refarch) precedes the data, so a cache this user did not write (a planted hook,
a changed account id) fails verification and is discarded with a warning. A unit whose
values hold a value read from the environment (get_env: often a secret) is not stored.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from refarch import files
from refarch.config.evaluate import Records
from refarch.errors import RefarchWarning, UnreadableFile, UnsafeLocalState
from refarch.models import Dependency, ErrorRule, Exclude, Generate, RemoteState, Unit

CACHE_VERSION = 5  # 4: repeated attributes refused; 5: included files memoised by what they read
SETTLED_NS = 2_000_000_000  # a file changed this long before a load began has a trusted status
CACHE_FILE = f"units-py{sys.version_info.major}{sys.version_info.minor}.marshal"
MAGIC = b"refarch-cache\n"
MAX_CACHE_BYTES = 512 * 1024 * 1024
# Environment values shorter than this are not looked for in a unit (a region, "true"):
# the same threshold as masking.
MIN_ENV_SECRET = 4


def _discard(path: Path, why: str) -> None:
    warnings.warn(f"{path}: {why}; the unit cache is discarded and rebuilt", RefarchWarning, stacklevel=3)


def env_digest(value: str | None) -> str | None:
    """Env values are stored hashed in the cache key."""
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def records_key(records: Records, root: Path) -> dict[str, Any]:
    """What a unit consulted, relative to the repo root: its cache key."""
    prefix = str(root) + os.sep

    def rel(path: str) -> str:
        return path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)

    return {
        "files": {rel(p): h for p, h in sorted(records.files.items())},
        "env": {k: env_digest(v) for k, v in sorted(records.env.items())},
        "probes": {rel(p): e for p, e in sorted(records.probes.items())},
    }


def digest_of(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(repr(sorted((k, sorted(v.items())) for k, v in key.items())).encode()).hexdigest()


class UnitCache:
    """Load, validate and store cached units for one repo root."""

    def __init__(
        self, root: Path, cache_dir: Path, env: Mapping[str, str], *, key: bytes | None = None
    ) -> None:
        self.root = root
        self._prefix = str(root) + os.sep
        self.path = cache_dir / CACHE_FILE
        self.env = env
        self.started = time.time_ns()
        self.manifest: dict[str, dict[str, Any]] = {"files": {}, "env": {}, "probes": {}, "stats": {}}
        self.entries: dict[str, Any] = {}
        self.kept: dict[str, Any] = {}
        self.stored = False
        self.unsettled = 0
        self.key = key
        self._load()
        self.changed = self._changed()

    def _load(self) -> None:
        """Read the cache if there is one this user wrote; the folders under .refarch must be
        ours (UnsafeLocalState otherwise), anything else wrong only costs the cache."""
        files.check_local_parent(self.path, create=False)
        if not self.path.exists():
            return
        files.check_ours(self.path)
        if self.key is None:
            try:
                self.key = files.user_key()
            except (OSError, UnsafeLocalState) as exc:
                _discard(self.path, f"no usable cache key ({exc})")
                return
        try:
            payload = files.verified_payload(
                MAGIC, self.key, files.read_bounded(self.path, limit=MAX_CACHE_BYTES)
            )
        except UnreadableFile as exc:
            _discard(self.path, exc.detail)
            return
        if payload is None:
            _discard(self.path, "it was not written by refarch as this user (verification failed)")
            return
        try:
            data = marshal.loads(payload)  # noqa: S302 - verified as ours; marshal builds data, runs no code
            if not (isinstance(data, dict) and data.get("version") == CACHE_VERSION):
                return  # another refarch's format: rebuilt silently
            manifest, entries = data["manifest"], data["units"]
            if not (
                isinstance(manifest, dict)
                and all(isinstance(manifest.get(k), dict) for k in ("files", "env", "probes", "stats"))
                and isinstance(entries, dict)
                and all(isinstance(e, dict) for e in entries.values())
            ):
                raise TypeError("wrong shape")
        except (ValueError, EOFError, TypeError, KeyError) as exc:
            _discard(self.path, f"it is malformed ({exc})")
            return
        self.manifest, self.entries = manifest, entries

    def _changed(self) -> dict[str, set[str]]:
        """Which files, env vars and probes differ from the manifest, checked once per load:
        a file by its status when the manifest noted a trusted one, else by its content."""
        changed = set()
        stats = self.manifest["stats"]
        self.unsettled = 0  # files read whose status could be trusted now: worth saving
        for rel, digest in self.manifest["files"].items():
            path = self._prefix + rel
            noted = stats.get(rel)
            if noted is not None and noted == _status(path):
                continue
            try:
                now: str | None = hashlib.sha256(files.read_bounded(Path(path))).hexdigest()
            except UnreadableFile:
                now = None
            if now != digest:
                changed.add(rel)
            elif self._settled(path) is not None:
                self.unsettled += 1
        return {
            "files": changed,
            "env": {k for k, d in self.manifest["env"].items() if env_digest(self.env.get(k)) != d},
            "probes": {
                rel
                for rel, existed in self.manifest["probes"].items()
                if os.path.exists(self._prefix + rel) != existed
            },
        }

    def lookup(self, unit_path: str) -> tuple[Unit, dict[str, Any]] | None:
        """The cached unit if nothing it consulted has changed since it was stored."""
        entry = self.entries.get(unit_path)
        if entry is None:
            return None
        for kind in ("files", "env", "probes"):
            if self.changed[kind] and not self.changed[kind].isdisjoint(entry[kind]):
                return None
        try:
            unit = unit_from_dict(entry["unit"])
            meta = entry["meta"]
        except (KeyError, TypeError, ValueError) as exc:
            _discard(self.path, f"the entry of {unit_path} is malformed ({exc!r})")
            self.entries.pop(unit_path, None)
            return None
        self.kept[unit_path] = entry
        return unit, meta

    def store(
        self, unit: Unit, key: dict[str, Any], meta: dict[str, Any], *, data: dict[str, Any] | None = None
    ) -> None:
        """Keep `unit` for the next load, unless it holds a value read from the environment
        (never written in clear to disk: the unit is evaluated again next time instead).
        `data`: the unit as `unit_to_dict` gives it, when the caller has it already."""
        data = unit_to_dict(unit) if data is None else data
        values = [self.env.get(name) for name in key["env"]]
        secret_values = [v for v in values if v is not None and len(v) >= MIN_ENV_SECRET]
        if secret_values:
            text = repr(data) + repr(meta)
            if any(v in text or repr(v)[1:-1] in text for v in secret_values):
                self.kept.pop(unit.path, None)
                self.stored = self.stored or unit.path in self.entries
                return
        self.stored = True
        self.kept[unit.path] = {
            **{kind: list(key[kind]) for kind in ("files", "env", "probes")},
            "key": key,
            "unit": data,
            "meta": meta,
        }

    def _settled(self, path: str) -> list[int] | None:
        """The file's status if it was last changed well before this load began, else None."""
        status = _status(path)
        return status if status is not None and status[1] < self.started - SETTLED_NS else None

    def save(self) -> None:
        """Write atomically (temp file + rename); a read-only repo just goes without a cache."""
        if not self.stored and not self.unsettled and self.kept.keys() == self.entries.keys():
            return
        manifest: dict[str, dict[str, Any]] = {"files": {}, "env": {}, "probes": {}, "stats": {}}
        units = {}
        for path, entry in self.kept.items():
            key = entry.pop("key", None)
            for kind in ("files", "env", "probes"):
                source = key[kind] if key is not None else self.manifest[kind]
                for name in entry[kind]:
                    manifest[kind][name] = source[name]
            units[path] = entry
        for rel in manifest["files"]:
            status = self._settled(self._prefix + rel)
            if status is not None:
                manifest["stats"][rel] = status
        payload = marshal.dumps({"version": CACHE_VERSION, "manifest": manifest, "units": units})
        try:
            key = self.key if self.key is not None else files.user_key()
            files.write_atomic(self.path, files.sign(MAGIC, key, payload), mode=0o600)
        except (OSError, UnsafeLocalState) as exc:
            if isinstance(exc, UnsafeLocalState) and files.LOCAL_DIR in Path(exc.path).parts:
                raise
            return  # a read-only repo, or no usable key: no cache


def _status(path: str) -> list[int] | None:
    """What tells a changed file without reading it: mtime, ctime, size, inode, device."""
    try:
        info = os.stat(path)  # noqa: PTH116 - a string path: 10,000 of them on a warm load
    except OSError:
        return None
    return [info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino, info.st_dev]


def unit_to_dict(unit: Unit) -> dict[str, Any]:
    return {
        "path": unit.path,
        "account": unit.account,
        "account_id": unit.account_id,
        "region": unit.region,
        "tier": unit.tier,
        "skip": unit.skip,
        "dependencies": list(unit.dependencies),
        "dependency_blocks": [
            {
                "name": d.name,
                "path": d.path,
                "enabled": d.enabled,
                "skip_outputs": d.skip_outputs,
                "mock_outputs": d.mock_outputs,
                "mock_outputs_allowed_terraform_commands": d.mock_outputs_allowed_terraform_commands,
            }
            for d in unit.dependency_blocks
        ],
        "source": unit.source,
        "remote_state": None
        if unit.remote_state is None
        else {
            "backend": unit.remote_state.backend,
            "config": unit.remote_state.config,
            "generate": unit.remote_state.generate,
            "disable_init": unit.remote_state.disable_init,
        },
        "inputs": unit.inputs,
        "iam_role": unit.iam_role,
        "prevent_destroy": unit.prevent_destroy,
        "exclude": None
        if unit.exclude is None
        else {
            "if": unit.exclude.if_,
            "actions": list(unit.exclude.actions),
            "exclude_dependencies": unit.exclude.exclude_dependencies,
        },
        "generate": [
            {
                "name": g.name,
                "path": g.path,
                "contents": g.contents,
                "if_exists": g.if_exists,
                "disable": g.disable,
            }
            for g in unit.generate
        ],
        "terraform": unit.terraform,
        "locals": unit.locals,
        "files": list(unit.files),
        "digest": unit.digest,
        "errors": [
            [e.kind, e.name, list(e.patterns), e.max_attempts, e.sleep_seconds, e.message, e.signals]
            for e in unit.errors
        ],
        "terraform_binary": unit.terraform_binary,
    }


def unit_from_dict(data: dict[str, Any]) -> Unit:
    remote = data["remote_state"]
    exclude = data["exclude"]
    return Unit(
        path=data["path"],
        account=data["account"],
        account_id=data["account_id"],
        region=data["region"],
        tier=data["tier"],
        skip=data["skip"],
        dependencies=tuple(data["dependencies"]),
        dependency_blocks=tuple(
            Dependency(
                d["name"],
                d["path"],
                d["enabled"],
                d["skip_outputs"],
                d["mock_outputs"],
                tuple(d["mock_outputs_allowed_terraform_commands"])
                if d["mock_outputs_allowed_terraform_commands"] is not None
                else None,
            )
            for d in data["dependency_blocks"]
        ),
        source=data["source"],
        remote_state=None
        if remote is None
        else RemoteState(remote["backend"], remote["config"], remote["generate"], remote["disable_init"]),
        inputs=data["inputs"],
        iam_role=data["iam_role"],
        prevent_destroy=data["prevent_destroy"],
        exclude=None
        if exclude is None
        else Exclude(exclude["if"], tuple(exclude["actions"]), exclude["exclude_dependencies"]),
        generate=tuple(
            Generate(g["name"], g["path"], g["contents"], g["if_exists"], g["disable"])
            for g in data["generate"]
        ),
        terraform=data["terraform"],
        locals=data["locals"],
        files=tuple(data["files"]),
        digest=data["digest"],
        errors=tuple(ErrorRule(k, n, tuple(p), a, s, m, sig) for k, n, p, a, s, m, sig in data["errors"]),
        terraform_binary=data.get("terraform_binary"),
    )
