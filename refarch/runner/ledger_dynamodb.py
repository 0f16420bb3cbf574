"""The shared ledger: every runner's run history in one DynamoDB table, unit logs in S3.

`[ledger] backend = "dynamodb"` in refarch.toml. One table holds, by partition key:
  `repo#<repo>`  one item per run (sort key `run#<run-id>`): the index `--resume last`,
                 `refarch history` and the scheduler's durations read, newest last;
  `run#<run-id>` the run's events (sort key: a zero-padded sequence), the same records the
                 local JSONL ledger holds, which each runner also keeps as before; an event
                 over one item's size (a run_start of thousands of units) is split: its
                 further parts (`<seq>.<part>`) are written first, then the head item with
                 `parts`, so a reader sees all of it or none;
  `lock#<account>` the account locks of account_locks.py.
The unit logs (already masked) go to `s3://<bucket>/<prefix><run-id>/<unit>.log`.
Every item read back is checked like a local ledger line: one that is not what refarch
writes is skipped with a warning naming the table and its key.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refarch.aws import AWS_EXCEPTIONS, AwsSessions
from refarch.errors import ConfigError, RefarchError, RefarchWarning, UsageError
from refarch.exec.process import capture
from refarch.models import Repo
from refarch.runner.ledger import (
    Ledger,
    LedgerStore,
    LedgerWriter,
    LocalLedgerStore,
    runs_dir,
    shape_problem,
)
from refarch.settings import SETTINGS_FILE, Settings

DEFAULT_TABLE = "refarch-ledger"
DEFAULT_PREFIX = "refarch/runs/"
DEFAULT_LOCK_EXPIRY = 900  # seconds without a heartbeat after which an account lock is dead
_USERINFO = re.compile(r"(?<=//)[^@/]+@")  # https://user:token@host/... -> https://host/...
PART_CHARS = 350_000  # of an event's JSON (ASCII) per item: DynamoDB takes 400 KB an item
_HEAD = re.compile(r"^\d{9}$")
_PART = re.compile(r"^(\d{9})\.(\d{4})$")
_RUN_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$")


@dataclass(frozen=True)
class LedgerConfig:
    """`[ledger]` of refarch.toml: where runs are recorded."""

    backend: str = "local"
    table: str = DEFAULT_TABLE
    account: str | None = None  # the account holding table and bucket (default: security, else tier 1)
    region: str | None = None  # default: refarch.toml's region
    bucket: str | None = None  # default: refarch-ledger-<account id>-<region>
    prefix: str = DEFAULT_PREFIX
    repo: str | None = None  # the name runs are kept under (default: git's origin URL, else the folder)
    lock_expiry: int = DEFAULT_LOCK_EXPIRY

    @classmethod
    def from_settings(cls, settings: Settings) -> LedgerConfig:
        """`[ledger]`, validated by refarch.settings (file, dotted key and line on errors)."""
        ledger = settings.ledger
        return cls(
            backend=ledger.backend,
            table=ledger.table,
            account=ledger.account,
            region=ledger.region,
            bucket=ledger.bucket,
            prefix=ledger.prefix if ledger.prefix.endswith("/") else ledger.prefix + "/",
            repo=ledger.repo,
            lock_expiry=ledger.lock_expiry,
        )

    @property
    def shared(self) -> bool:
        return self.backend == "dynamodb"


@dataclass(frozen=True)
class LedgerPlace:
    """Where the shared ledger is: the account (name, id or None for the caller's own), region,
    table, bucket and prefix, and the name this repo's runs are kept under."""

    account: str | None
    account_id: str | None
    region: str
    table: str
    bucket: str
    prefix: str
    repo: str
    lock_expiry: int = DEFAULT_LOCK_EXPIRY

    def describe(self) -> str:
        where = f"account {self.account} ({self.account_id})" if self.account_id else "the caller's account"
        return f"DynamoDB table {self.table} in {where}, {self.region}"


def ledger_account(repo: Repo, config: LedgerConfig, settings: Settings) -> tuple[str | None, str | None]:
    """(name, id) of the account holding the ledger: `[ledger] account`, else "security",
    else the first account by tier; (None, None) for the caller's own when the repo has none."""
    known = {a.name: a for a in repo.accounts}
    if config.account is not None:
        if config.account not in known:
            raise ConfigError(
                f"[ledger] account {config.account!r} is not an account of the repo",
                path=settings.path or SETTINGS_FILE,
                hint=f"accounts in the repo: {', '.join(sorted(known)) or '(none)'}",
            )
        return config.account, known[config.account].id
    if not known:
        return None, None
    if "security" in known:
        return "security", known["security"].id
    first = min(known.values(), key=lambda a: (settings.tier_of(a.name), a.name))
    return first.name, first.id


def ledger_place(repo: Repo, settings: Settings, env: Mapping[str, str] | None = None) -> LedgerPlace:
    """Resolve `[ledger]` for this repo (the ledger account's id, the bucket's default name)."""
    config = LedgerConfig.from_settings(settings)
    name, account_id = ledger_account(repo, config, settings)
    region = config.region or settings.region
    bucket = config.bucket or f"refarch-ledger-{account_id or 'caller'}-{region}"
    return LedgerPlace(
        name, account_id, region, config.table, bucket, config.prefix,
        config.repo or repo_name(repo.root, env or {}), config.lock_expiry,
    )  # fmt: skip


def repo_name(root: Path, env: Mapping[str, str]) -> str:
    """The name every clone of a repo shares: git's origin URL without credentials or `.git`,
    else the folder's name."""
    try:
        result = capture(
            ["git", "-C", str(root), "config", "--get", "remote.origin.url"], cwd=root, env=dict(env)
        )
    except RefarchError:  # no git: the folder's name
        return root.name
    url = result.stdout_tail.strip() if result.ok else ""
    url = _USERINFO.sub("", url).removesuffix(".git").rstrip("/")
    return url or root.name


def store_for(
    repo: Repo,
    settings: Settings,
    sessions: AwsSessions | None = None,
    env: Mapping[str, str] | None = None,
) -> LedgerStore:
    """The ledger store `[ledger]` asks for: the local folder (the default), or the shared
    DynamoDB table (checked to exist now, so a run never starts without its history)."""
    config = LedgerConfig.from_settings(settings)
    if not config.shared:
        return LocalLedgerStore(repo.root)
    place = ledger_place(repo, settings, env)
    sessions = sessions or AwsSessions(settings)
    dynamodb = sessions.client("dynamodb", place.account_id, place.region, place.account)
    s3 = sessions.client("s3", place.account_id, place.region, place.account)
    store = DynamoLedgerStore(repo.root, place, dynamodb, s3)
    store.check()
    return store


class DynamoLedgerStore:
    """The shared ledger (see the module's docstring); each run is also written locally."""

    name = "dynamodb"

    def __init__(self, root: Path, place: LedgerPlace, dynamodb: Any, s3: Any) -> None:
        self.root = root
        self.place = place
        self.dynamodb = dynamodb
        self.s3 = s3

    def check(self) -> None:
        """The table exists (bootstrap makes it), or a ConfigError saying how to make it."""
        try:
            self.dynamodb.describe_table(TableName=self.place.table)
        except AWS_EXCEPTIONS as exc:
            raise ConfigError(
                f"the shared ledger ({self.place.describe()}) cannot be read: {_short(exc)}",
                hint="create it with `refarch bootstrap DIR --only ledger`, or set [ledger] backend = "
                '"local" in refarch.toml',
            ) from None

    # -- writing ---------------------------------------------------------------------------
    def open(self, run_id: str) -> LedgerWriter:
        return DynamoLedger(Ledger(runs_dir(self.root) / f"{run_id}.jsonl"), self, run_id)

    def put(self, item: Mapping[str, Any], **kwargs: Any) -> None:
        self.dynamodb.put_item(TableName=self.place.table, Item=_to_item(item), **kwargs)

    # -- reading ---------------------------------------------------------------------------
    def _query(self, pk: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        first_only = kwargs.pop("paginate", False)  # a filtered query: the first match, over pages
        params: dict[str, Any] = {
            "TableName": self.place.table,
            "KeyConditionExpression": "pk = :pk" + kwargs.pop("and_sk", ""),
            "ExpressionAttributeValues": {":pk": {"S": pk}, **kwargs.pop("values", {})},
            "ConsistentRead": True,
            **kwargs,
        }
        try:
            while True:
                page = self.dynamodb.query(**params)
                items += [_from_item(i) for i in page.get("Items", [])]
                if "LastEvaluatedKey" not in page or "Limit" in params or (first_only and items):
                    return items
                params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except AWS_EXCEPTIONS as exc:
            raise UsageError(
                f"could not read the shared ledger ({self.place.describe()}): {_short(exc)}",
                hint="check the credentials reach the ledger account, and [ledger] in refarch.toml",
            ) from None

    def run_ids(self, since: str | None = None) -> list[str]:
        if since is None:
            rows = self._query(f"repo#{self.place.repo}")
        else:
            rows = self._query(
                f"repo#{self.place.repo}",
                and_sk=" AND sk >= :since",
                values={":since": {"S": f"run#{since}"}},
            )
        return sorted(str(r["run_id"]) for r in self._index(rows))

    def find(self, ref: str) -> str:
        if ref == "last":
            pk = f"repo#{self.place.repo}"
            rows = self._index(self._query(pk, ScanIndexForward=False, Limit=25))
            rows = rows or self._index(self._query(pk, ScanIndexForward=False))  # past broken items
            if not rows:
                raise UsageError(
                    f"no earlier run of {self.place.repo} in the shared ledger ({self.place.describe()})",
                    hint="run without --resume first",
                )
            return str(rows[0]["run_id"])
        rows = self._query(
            f"repo#{self.place.repo}", and_sk=" AND sk = :sk", values={":sk": {"S": f"run#{ref}"}}
        )
        if not rows:
            known = self.run_ids()
            raise UsageError(
                f"no run {ref!r} of {self.place.repo} in the shared ledger ({self.place.describe()})",
                hint=f"known runs: {', '.join(known[-5:])}" if known else "run without --resume first",
            )
        return ref

    def last_of(self, action: str, units: list[str]) -> str:
        """`--resume last` with the shared ledger: the newest run of `action` on exactly these
        units (the same CI job), not the newest run of the repo (another job's, in a fan-out)."""
        rows = self._query(
            f"repo#{self.place.repo}",
            ScanIndexForward=False,
            FilterExpression="#slice = :slice",
            ExpressionAttributeNames={"#slice": "slice"},
            values={":slice": {"S": slice_key(action, units)}},
            paginate=True,
        )
        rows = self._index(rows)
        if not rows:
            raise UsageError(
                f"no earlier {action} of these {len(units)} unit(s) of {self.place.repo} in the shared "
                f"ledger ({self.place.describe()})",
                hint="name it: --resume RUN_ID (`refarch history DIR` lists them), or run without --resume",
            )
        return str(rows[0]["run_id"])

    def _index(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The run index rows that are what refarch writes; the others skipped, said."""
        kept = []
        for row in rows:
            run_id = row.get("run_id")
            if isinstance(run_id, str) and _RUN_ID.match(run_id) and row.get("sk") == f"run#{run_id}":
                kept.append(row)
            else:
                self._skipped(row, "a run index item without a valid run_id")
        return kept

    def events(self, run_id: str) -> list[dict[str, Any]]:
        """The run's events in order: split events joined, each checked like a local line."""
        rows = self._query(f"run#{run_id}")
        parts: dict[tuple[str, int], str] = {}
        for row in rows:
            found = _PART.match(str(row.get("sk", "")))
            if found and isinstance(row.get("body"), str):
                parts[(found.group(1), int(found.group(2)))] = row["body"]
        events = []
        for row in rows:
            sk = str(row.get("sk", ""))
            if _PART.match(sk):
                continue
            record, problem = self._event(row, sk, parts)
            if problem is not None:
                self._skipped(row, problem)
            elif record is not None:
                events.append(record)
        return events

    def _event(
        self, row: Mapping[str, Any], sk: str, parts: Mapping[tuple[str, int], str]
    ) -> tuple[dict[str, Any] | None, str | None]:
        if not _HEAD.match(sk):
            return None, "not an event item (its sort key is no sequence number)"
        body, count = row.get("body"), row.get("parts", 1)
        if not isinstance(body, str):
            return None, "an event item without a text body"
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
            return None, f"its `parts` {count!r} is not a count of parts"
        missing = [n for n in range(1, count) if (sk, n) not in parts]
        if missing:
            return None, f"an event split in {count} parts, {len(missing)} of them missing"
        text = body + "".join(parts[(sk, n)] for n in range(1, count))
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            return None, "its body is not JSON"
        return record, shape_problem(record)

    def _skipped(self, row: Mapping[str, Any], problem: str) -> None:
        key = f"pk={str(row.get('pk', '?'))[:200]!r} sk={str(row.get('sk', '?'))[:60]!r}"
        warnings.warn(
            f"shared ledger table {self.place.table}, item {key}: skipped: {problem}",
            RefarchWarning,
            stacklevel=3,
        )

    def location(self, run_id: str) -> str:
        return f"dynamodb://{self.place.table}/run#{run_id}"

    def log_uri(self, run_id: str, unit: str) -> tuple[str, str]:
        key = f"{self.place.prefix}{run_id}/{unit.replace('/', '__')}.log"
        return key, f"s3://{self.place.bucket}/{key}"


class DynamoLedger:
    """One run's ledger: each event to the local JSONL file and to the shared table.

    A write to the table that fails (after botocore's retries) never stops the run: it is
    counted and said once as a warning; the local ledger still has every event."""

    def __init__(self, local: Ledger, store: DynamoLedgerStore, run_id: str) -> None:
        self.local = local
        self.store = store
        self.run_id = run_id
        self._lock = threading.Lock()
        self._seq = 0
        self.failed = 0

    @property
    def location(self) -> str:
        return self.local.location

    def write(self, event: str, **fields: Any) -> None:
        self.local.write(event, **fields)
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        body = json.dumps(record, default=str)  # ASCII: one character, one byte
        with self._lock:
            self._seq += 1
            seq = self._seq
        chunks = [body[i : i + PART_CHARS] for i in range(0, len(body), PART_CHARS)]
        for number, chunk in enumerate(chunks[1:], start=1):  # the head last: all or nothing
            if not self._put({"pk": f"run#{self.run_id}", "sk": f"{seq:09d}.{number:04d}", "body": chunk}):
                return
        item: dict[str, Any] = {
            "pk": f"run#{self.run_id}",
            "sk": f"{seq:09d}",
            "event": event,
            "ts": record["ts"],
            "body": chunks[0],
        }
        if len(chunks) > 1:
            item["parts"] = len(chunks)
        if isinstance(fields.get("unit"), str):
            item["unit"] = fields["unit"]
        self._put(item)
        if event == "run_start":
            index = {
                "pk": f"repo#{self.store.place.repo}",
                "sk": f"run#{self.run_id}",
                "run_id": self.run_id,
                "action": str(fields.get("action", "")),
                "slice": slice_key(str(fields.get("action", "")), list(fields.get("units", []))),
                "ts": record["ts"],
                "host": str(fields.get("host", "")),
            }
            self._put(index)

    def attach_log(self, unit: str, path: Path) -> str | None:
        """Upload the unit's (masked) log; its s3:// address, or None when it failed."""
        key, uri = self.store.log_uri(self.run_id, unit)
        try:
            with path.open("rb") as body:
                self.store.s3.put_object(
                    Bucket=self.store.place.bucket, Key=key, Body=body, ServerSideEncryption="AES256"
                )
        except (OSError, *AWS_EXCEPTIONS) as exc:
            self._failed(f"the log of {unit}: {_short(exc)}")
            return None
        return uri

    def _put(self, item: Mapping[str, Any]) -> bool:
        try:
            self.store.put(item)
        except AWS_EXCEPTIONS as exc:
            self._failed(f"an event: {_short(exc)}")
            return False
        return True

    def _failed(self, what: str) -> None:
        with self._lock:
            self.failed += 1
            first = self.failed == 1
        if first:
            warnings.warn(
                f"the shared ledger ({self.store.place.describe()}) could not take {what}; "
                f"the local ledger {self.local.location} has every event",
                RefarchWarning,
                stacklevel=3,
            )

    def close(self) -> None:
        self.local.close()

    def __enter__(self) -> DynamoLedger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def slice_key(action: str, units: list[str]) -> str:
    """What identifies one CI job's runs: the action and the exact set of units."""
    return hashlib.sha256(json.dumps([action, sorted(units)]).encode()).hexdigest()[:32]


def _to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, bool) or value is None:
            item[key] = {"S": json.dumps(value)}
        elif isinstance(value, int | float):
            item[key] = {"N": repr(value)}
        else:
            item[key] = {"S": str(value)}
    return item


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, typed in item.items():
        if "S" in typed:
            values[key] = typed["S"]
        elif "N" in typed:
            try:
                number = float(typed["N"])
            except (TypeError, ValueError):
                continue  # not a number: the shape checks say what is missing
            values[key] = int(number) if number.is_integer() and "." not in typed["N"] else number
    return values


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300]
