"""State locks a dead run left behind: what identifies them, and which ones may be released.

When a unit starts, the ledger records the DynamoDB lock its Terraform will take (table, the
LockID `<bucket>/<key>`, and Terraform's `Who`, user@host). A later `--resume` of that run,
holding the repo lock (so the dead run is really gone), releases a lock only when everything
matches: same LockID, same Who, created after the dead unit started. Anyone else's lock is
never touched; its unit then fails with Terraform's own lock message.

The readers over AWS (`aws_lock_reader`) and the repair of a state digest that a Terraform
killed between its two writes left wrong (`aws_digest_repair`) live here too.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from refarch.aws import AWS_EXCEPTIONS, AwsSessions
from refarch.models import Unit

# Reads the lock item of `lock` (a ledger record) in the unit's account; None when absent.
LockReader = Callable[[Unit, Mapping[str, Any]], Mapping[str, Any] | None]
CLOCK_SKEW = 300.0  # seconds: a lock "created" this long before the unit started is still its
ATTEMPT_SKEW = 2.0  # seconds: same machine, same clock; only rounding of `Created` to allow for
_PRINTED_ID = re.compile(r"^[\s│]*Lock Info:[ \t]*\n[\s│]*ID:[ \t]+(\S+)", re.MULTILINE)


def who_am_i() -> str:
    """Terraform's `Who` of a lock this process's children take: user@host."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def lock_record(unit: Unit, who: str) -> dict[str, str] | None:
    """What identifies the state lock `unit` takes (S3 backend with a DynamoDB table)."""
    remote = unit.remote_state
    if remote is None or remote.backend != "s3":
        return None
    config = remote.config
    table, bucket, key = config.get("dynamodb_table"), config.get("bucket"), config.get("key")
    if not (isinstance(table, str) and isinstance(bucket, str) and isinstance(key, str)):
        return None
    region = config.get("dynamodb_region") or config.get("region") or unit.region or ""
    return {"table": table, "id": f"{bucket}/{key}", "region": str(region), "who": who}


@dataclass(frozen=True)
class StaleLock:
    """A state lock that a dead run of this repo left: Terraform's lock ID and its info."""

    unit: str
    lock_id: str
    info: Mapping[str, Any]


def stale_locks(
    unfinished: Mapping[str, Mapping[str, Any]], units: Mapping[str, Unit], read: LockReader
) -> list[StaleLock]:
    """The locks held for `unfinished` units (unit -> its unit_start event) that the dead run
    took itself: same LockID and Who, created after the unit started."""
    found = []
    for path, start in unfinished.items():
        lock = start.get("lock")
        if not isinstance(lock, Mapping) or path not in units:
            continue
        parsed = _lock_info(read(units[path], lock))
        if parsed is None:
            continue
        info, created = parsed
        started = float(start.get("ts", 0))
        if info.get("Who") == lock.get("who") and created >= started - CLOCK_SKEW and info.get("ID"):
            found.append(StaleLock(path, str(info["ID"]), info))
    return found


def left_by_attempt(
    unit: Unit, lock: Mapping[str, Any], item: Mapping[str, Any] | None, started: float, ended: float
) -> StaleLock | None:
    """The lock (`item`, as read after the attempt) that an attempt of `unit` running from
    `started` to `ended` took and left behind (its Terraform was killed, or could not reach
    the backend to unlock): same Who as ours, created while the attempt ran. The caller
    holds the repo lock and its Terraform has exited, so nobody else can be using it."""
    parsed = _lock_info(item)
    if parsed is None:
        return None
    info, created = parsed
    if info.get("Who") != lock.get("who") or not info.get("ID"):
        return None
    if not started - ATTEMPT_SKEW <= created <= ended + ATTEMPT_SKEW:
        return None
    return StaleLock(unit.path, str(info["ID"]), info)


def printed_lock_id(output: str) -> str | None:
    """The ID of the lock that Terraform says holds the state, from its "Lock Info:" block
    after "Error acquiring the state lock" (the last one printed)."""
    found = _PRINTED_ID.findall(output)
    return found[-1] if found else None


def _lock_info(item: Mapping[str, Any] | None) -> tuple[dict[str, Any], float] | None:
    """Terraform's lock info of a DynamoDB lock item, and when it was created."""
    if item is None:
        return None
    try:
        info = json.loads(str(item.get("Info", "")))
        created = datetime.fromisoformat(str(info["Created"]).replace("Z", "+00:00")).timestamp()
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return (info, created) if isinstance(info, dict) else None


def aws_lock_reader(sessions: AwsSessions) -> LockReader:
    """Reads a state lock's DynamoDB item in the unit's account."""

    def read(unit: Unit, lock: Mapping[str, Any]) -> Mapping[str, Any] | None:
        region = str(lock.get("region") or "") or None
        client = sessions.client("dynamodb", unit.account_id, region, unit.account)
        try:
            item = client.get_item(TableName=lock["table"], Key={"LockID": {"S": lock["id"]}}).get("Item")
        except AWS_EXCEPTIONS:
            return None  # no table, no access: nothing refarch may release
        return {k: v.get("S") for k, v in item.items()} if item else None

    return read


def aws_digest_repair(sessions: AwsSessions) -> Callable[[Unit], str | None]:
    """Sets a unit's state digest (`<bucket>/<key>-md5` in its lock table) to the MD5 of its
    state object in S3; returns the digest, or None when the unit has no such backend."""

    def repair(unit: Unit) -> str | None:
        config = unit.remote_state.config if unit.remote_state and unit.remote_state.backend == "s3" else {}
        bucket, key, table = config.get("bucket"), config.get("key"), config.get("dynamodb_table")
        if not (isinstance(bucket, str) and isinstance(key, str) and isinstance(table, str)):
            return None
        region = str(config.get("region") or unit.region or "") or None
        s3 = sessions.client("s3", unit.account_id, region, unit.account)
        dynamodb = sessions.client("dynamodb", unit.account_id, region, unit.account)
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
            dynamodb.put_item(
                TableName=table, Item={"LockID": {"S": f"{bucket}/{key}-md5"}, "Digest": {"S": digest}}
            )
        except AWS_EXCEPTIONS:
            return None
        return digest

    return repair
