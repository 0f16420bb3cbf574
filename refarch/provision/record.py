"""The bootstrap record: every ARN, id and name made or found, written atomically as JSON."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refarch import files
from refarch.errors import ConfigError, UnreadableFile
from refarch.provision import Result

RECORD_PATH = Path(".refarch") / "bootstrap.json"
VERSION = 1  # the record's schema_version: schemas/bootstrap-record.schema.json


def now() -> str:
    """UTC time stamp for the record."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


@dataclass
class AccountRecord:
    """One account's part of a bootstrap: its status and every result so far."""

    name: str
    id: str
    tier: int
    status: str = "pending"  # pending | running | done | failed
    digest: str = ""  # of what the account was asked for: a resumed run skips it if unchanged
    results: list[Result] = field(default_factory=list)
    error: str | None = None
    finished_at: str | None = None

    @property
    def changes(self) -> list[str]:
        """Every change made (or planned, in a dry run) in this account."""
        return [change for result in self.results for change in result.changes]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "tier": self.tier,
            "status": self.status,
            "digest": self.digest,
            "error": self.error,
            "finished_at": self.finished_at,
            "results": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccountRecord:
        return cls(
            name=data["name"],
            id=data["id"],
            tier=int(data["tier"]),
            status=data["status"],
            digest=data.get("digest", ""),
            error=data.get("error"),
            finished_at=data.get("finished_at"),
            results=[Result.from_json(r) for r in data.get("results", [])],
        )


@dataclass
class BootstrapRecord:
    """What `refarch bootstrap` made or found, per account, plus the values later steps need.

    `outputs` holds what templates and the runner use: `cmk_administrator_iam_arns`,
    `dns_imports` (the `terraform import` steps of the route53 units), `private_ca`.
    """

    status: str = "running"  # running | done | failed | dry-run
    dry_run: bool = False
    endpoint_url: str | None = None
    started_at: str = field(default_factory=now)
    finished_at: str | None = None
    accounts: dict[str, AccountRecord] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)  # accounts this run went through
    resumed: list[str] = field(default_factory=list)  # done by a failed run before: skipped

    @property
    def results(self) -> list[Result]:
        """Every result in the record (accounts of earlier runs included)."""
        return [r for account in self.accounts.values() for r in account.results]

    @property
    def changes(self) -> list[str]:
        """Every change this run made (or would make), prefixed with account and region."""
        return [
            f"{name}{'/' + r.region if r.region else ''}: {change}"
            for name in self.ran
            for r in self.accounts[name].results
            for change in r.changes
        ]

    @property
    def nothing_to_do(self) -> bool:
        """True when the run found everything in place and changed nothing."""
        return not self.changes

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": VERSION,
            "status": self.status,
            "dry_run": self.dry_run,
            "endpoint_url": self.endpoint_url,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "warnings": list(self.warnings),
            "outputs": self.outputs,
            "ran": list(self.ran),
            "resumed": list(self.resumed),
            "accounts": {name: a.to_json() for name, a in self.accounts.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BootstrapRecord:
        return cls(
            status=data["status"],
            dry_run=bool(data.get("dry_run")),
            endpoint_url=data.get("endpoint_url"),
            started_at=data.get("started_at", ""),
            finished_at=data.get("finished_at"),
            warnings=list(data.get("warnings", [])),
            outputs=dict(data.get("outputs", {})),
            ran=list(data.get("ran", [])),
            resumed=list(data.get("resumed", [])),
            accounts={name: AccountRecord.from_json(a) for name, a in data.get("accounts", {}).items()},
        )


def write_record(path: Path, record: BootstrapRecord) -> Path:
    """Write the record atomically, 0600 (in a 0700 folder if new)."""
    text = json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n"
    return files.write_atomic(Path(path), text, mode=0o600)


def read_record(path: Path) -> BootstrapRecord | None:
    """The record at `path`, or None when there is none yet. A record that is not what
    `write_record` wrote (not JSON, not UTF-8, another shape) is a ConfigError saying so."""
    path = Path(path)
    files.check_local_parent(path, create=False)
    if not path.is_file():
        return None
    files.check_ours(path)
    try:
        data = json.loads(files.read_text(path))
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        version = data.get("schema_version", data.get("version"))  # `version` until schemas/ came
        if version != VERSION:
            raise ValueError(f"schema_version {version!r}")
        return BootstrapRecord.from_json(data)
    except UnreadableFile as exc:
        detail = exc.detail
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = str(exc) if not isinstance(exc, KeyError) else f"no {exc} field"
    raise ConfigError(
        f"the bootstrap record is unreadable: {detail}",
        path=path,
        hint="delete it; the next bootstrap re-checks every account",
    )
