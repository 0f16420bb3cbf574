"""What every provisioner shares: the Result an ensure_*() returns, change sets, config reading."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import botocore.exceptions

from refarch.errors import ConfigError
from refarch.settings import IDENTIFIER as IDENTIFIER  # re-exported
from refarch.settings import SETTINGS_FILE, Settings

Status = Literal["created", "exists", "updated"]
STATUSES: tuple[Status, ...] = ("created", "exists", "updated")
MANAGED_TAG = {"Key": "managed-by", "Value": "refarch"}

# Operations that only read. Everything else an AWS client sends counts as a change; STS
# (assume-role, caller identity) never changes a resource.
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search", "Check")


def is_mutating(service: str, operation: str) -> bool:
    """True when an API call can change something in the account (used to prove idempotence)."""
    return service != "sts" and not operation.startswith(READ_ONLY_PREFIXES)


@dataclass(frozen=True)
class Result:
    """What one ensure_*() found or did to one resource.

    `changes` lists each change made, or that would be made when `dry_run` is set: creating
    the resource, or bringing one drifted setting back into line. An `exists` result has none,
    which is how a second run can say "nothing to do".
    """

    kind: str  # s3-bucket, dynamodb-table, key-material, key-pair, certificate, ...
    name: str
    status: Status
    account_id: str
    region: str | None = None
    ids: Mapping[str, str] = field(default_factory=dict)  # ARNs, ids, fingerprints, paths
    changes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    dry_run: bool = False

    @property
    def where(self) -> str:
        """`account/region` for messages."""
        return f"{self.account_id}/{self.region}" if self.region else self.account_id

    def to_json(self) -> dict[str, Any]:
        """A plain dict for the bootstrap record."""
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "account_id": self.account_id,
            "region": self.region,
            "ids": dict(self.ids),
            "changes": list(self.changes),
            "warnings": list(self.warnings),
            "dry_run": self.dry_run,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        """The inverse of to_json (for resuming from a record)."""
        return cls(
            kind=str(data["kind"]),
            name=str(data["name"]),
            status=cast(Status, data["status"]),
            account_id=str(data["account_id"]),
            region=data.get("region"),
            ids=dict(data.get("ids", {})),
            changes=tuple(data.get("changes", ())),
            warnings=tuple(data.get("warnings", ())),
            dry_run=bool(data.get("dry_run", False)),
        )


class ChangeSet:
    """Collects the changes an ensure_*() decides on, and makes them unless `dry_run`."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.changes: list[str] = []

    def make(self, description: str, action: Callable[[], object]) -> None:
        """Record `description`; run `action` (the mutating AWS call) unless this is a dry run."""
        self.changes.append(description)
        if not self.dry_run:
            action()

    def status(self, created: bool) -> Status:
        """created / updated / exists from what was decided."""
        if created:
            return "created"
        return "updated" if self.changes else "exists"


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def tags_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """AWS's [{Key, Value}] form, sorted, always with the managed-by tag."""
    merged = {MANAGED_TAG["Key"]: MANAGED_TAG["Value"], **tags}
    return [{"Key": k, "Value": v} for k, v in sorted(merged.items())]


class Section:
    """Typed, validated reads of one refarch.toml table; errors name the file and the key.

    Superseded by the typed sections of refarch.settings (`settings.bootstrap`, ...): kept
    only while jobs/bootstrap.py still reads `[bootstrap]` through it."""

    def __init__(self, settings: Settings, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.path: Path | str = settings.path or SETTINGS_FILE
        self.data = dict(settings.section(name))
        unknown = set(self.data) - set(known)
        if unknown:
            raise ConfigError(
                f"[{name}] has unknown key(s): {', '.join(sorted(unknown))}",
                path=self.path,
                hint=f"known keys of [{name}]: {', '.join(sorted(known))}",
            )

    def error(self, key: str, wanted: str) -> ConfigError:
        """A ConfigError for `[section] key`."""
        return ConfigError(
            f"[{self.name}] {key} must be {wanted}, not {self.data.get(key)!r}", path=self.path
        )

    def string(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.error(key, "a non-empty string")
        return value

    def optional_string(self, key: str) -> str | None:
        return self.string(key, "-") if key in self.data else None

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "true or false")
        return value

    def integer(self, key: str, default: int, *, minimum: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"an integer >= {minimum}")
        return value

    def choice(self, key: str, default: str, choices: Iterable[str]) -> str:
        options = tuple(choices)
        value = self.data.get(key, default)
        if value not in options:
            raise self.error(key, "one of " + ", ".join(repr(c) for c in options))
        return str(value)

    def strings(
        self, key: str, default: Iterable[str] = (), *, pattern: re.Pattern[str] | None = None
    ) -> tuple[str, ...]:
        value = self.data.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, "a list of non-empty strings")
        if pattern is not None:
            for item in value:
                if not pattern.match(item):
                    raise self.error(key, f"a list of names matching {pattern.pattern}")
        if len(set(value)) != len(value):
            raise self.error(key, "a list without repeated names")
        return tuple(value)

    def string_table(self, key: str) -> dict[str, str]:
        value = self.data.get(key, {})
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.error(key, "a table of string values")
        return dict(value)
