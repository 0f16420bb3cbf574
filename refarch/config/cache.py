"""The on-disk unit cache: an unchanged repo loads without parsing a single file.

Each entry is keyed by what its evaluation consulted: the sha256 of every file read, the
(hashed) values of the env vars consulted, and which probed paths existed. An entry is
reused only when all of those still hold, so the cache is content-addressed in effect.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from refarch.config.evaluate import Records
from refarch.models import Dependency, Exclude, Generate, RemoteState, Unit

CACHE_VERSION = 1
CACHE_FILE = "units.json"


def env_digest(value: str | None) -> str | None:
    """Env values are stored hashed in the cache key."""
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def records_key(records: Records, root: Path) -> dict[str, Any]:
    prefix = str(root) + os.sep

    def rel(path: str) -> str:
        return path[len(prefix):] if path.startswith(prefix) else os.path.relpath(path, root)

    return {
        "files": {rel(p): h for p, h in sorted(records.files.items())},
        "env": {k: env_digest(v) for k, v in sorted(records.env.items())},
        "probes": {rel(p): e for p, e in sorted(records.probes.items())},
    }


def digest_of(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


class UnitCache:
    """Load, validate and store cached units for one repo root."""

    def __init__(self, root: Path, cache_dir: Path, env: Mapping[str, str]) -> None:
        self.root = root
        self._prefix = str(root) + os.sep
        self.path = cache_dir / CACHE_FILE
        self.env = env
        self.entries: dict[str, Any] = {}
        self.new_entries: dict[str, Any] = {}
        self._hashes: dict[str, str | None] = {}
        self._exists: dict[str, bool] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") == CACHE_VERSION:
                self.entries = data.get("units", {})
        except (OSError, ValueError):
            self.entries = {}

    def _file_hash(self, rel: str) -> str | None:
        if rel not in self._hashes:
            try:
                with open(self._prefix + rel, "rb") as handle:
                    self._hashes[rel] = hashlib.sha256(handle.read()).hexdigest()
            except OSError:
                self._hashes[rel] = None
        return self._hashes[rel]

    def _file_exists(self, rel: str) -> bool:
        if rel not in self._exists:
            self._exists[rel] = os.path.isfile(self._prefix + rel)
        return self._exists[rel]

    def lookup(self, unit_path: str) -> tuple[Unit, dict[str, Any]] | None:
        """The cached unit if every file, env var and probe it depended on is unchanged."""
        entry = self.entries.get(unit_path)
        if entry is None:
            return None
        key = entry["key"]
        if any(self._file_hash(rel) != h for rel, h in key["files"].items()):
            return None
        if any(env_digest(self.env.get(k)) != h for k, h in key["env"].items()):
            return None
        if any(self._file_exists(rel) != e for rel, e in key["probes"].items()):
            return None
        self.new_entries[unit_path] = entry
        return unit_from_dict(entry["unit"]), entry["meta"]

    def store(self, unit: Unit, key: dict[str, Any], meta: dict[str, Any]) -> None:
        self.new_entries[unit.path] = {"key": key, "unit": unit_to_dict(unit), "meta": meta}

    def save(self) -> None:
        """Write atomically (temp file + rename); a read-only repo just goes without a cache."""
        if self.new_entries == self.entries:
            return
        try:
            # 0700/0600: evaluated inputs may hold values read with get_env (secrets).
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".units-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"version": CACHE_VERSION, "units": self.new_entries}, handle,
                          separators=(",", ":"))
            Path(tmp).replace(self.path)
        except OSError:
            return


def unit_to_dict(unit: Unit) -> dict[str, Any]:
    return {
        "path": unit.path, "account": unit.account, "account_id": unit.account_id,
        "region": unit.region, "tier": unit.tier, "skip": unit.skip,
        "dependencies": list(unit.dependencies),
        "dependency_blocks": [
            {"name": d.name, "path": d.path, "enabled": d.enabled, "skip_outputs": d.skip_outputs,
             "mock_outputs": d.mock_outputs,
             "mock_outputs_allowed_terraform_commands": d.mock_outputs_allowed_terraform_commands}
            for d in unit.dependency_blocks
        ],
        "source": unit.source,
        "remote_state": None if unit.remote_state is None else {
            "backend": unit.remote_state.backend, "config": unit.remote_state.config,
            "generate": unit.remote_state.generate,
            "disable_init": unit.remote_state.disable_init},
        "inputs": unit.inputs, "iam_role": unit.iam_role,
        "prevent_destroy": unit.prevent_destroy,
        "exclude": None if unit.exclude is None else {
            "if": unit.exclude.if_, "actions": list(unit.exclude.actions),
            "exclude_dependencies": unit.exclude.exclude_dependencies},
        "generate": [{"name": g.name, "path": g.path, "contents": g.contents,
                      "if_exists": g.if_exists, "disable": g.disable} for g in unit.generate],
        "terraform": unit.terraform, "locals": unit.locals, "files": list(unit.files),
        "digest": unit.digest,
    }


def unit_from_dict(data: dict[str, Any]) -> Unit:
    remote = data["remote_state"]
    exclude = data["exclude"]
    return Unit(
        path=data["path"], account=data["account"], account_id=data["account_id"],
        region=data["region"], tier=data["tier"], skip=data["skip"],
        dependencies=tuple(data["dependencies"]),
        dependency_blocks=tuple(
            Dependency(d["name"], d["path"], d["enabled"], d["skip_outputs"], d["mock_outputs"],
                       tuple(d["mock_outputs_allowed_terraform_commands"])
                       if d["mock_outputs_allowed_terraform_commands"] is not None else None)
            for d in data["dependency_blocks"]),
        source=data["source"],
        remote_state=None if remote is None else RemoteState(
            remote["backend"], remote["config"], remote["generate"], remote["disable_init"]),
        inputs=data["inputs"], iam_role=data["iam_role"],
        prevent_destroy=data["prevent_destroy"],
        exclude=None if exclude is None else Exclude(
            exclude["if"], tuple(exclude["actions"]), exclude["exclude_dependencies"]),
        generate=tuple(Generate(g["name"], g["path"], g["contents"], g["if_exists"],
                                g["disable"]) for g in data["generate"]),
        terraform=data["terraform"], locals=data["locals"], files=tuple(data["files"]),
        digest=data["digest"],
    )
