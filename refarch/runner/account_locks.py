"""Account locks: one item per account in the shared ledger's table, so two pipelines never
apply or destroy the same account at once (the repo lock only guards one machine).

A lock is taken with a conditional put (it must not exist) for every account of the run
before any unit starts, all or none; a second run is refused at once, naming the holder.
While held, a heartbeat renews it every `expiry / 5` seconds. A lock is known dead, and is
released with a notice, when its holder ran on this host and its pid is gone, or when its
heartbeat is older than `expiry` ([ledger] lock_expiry, 15 minutes by default: a runner
killed with SIGKILL on another machine frees its accounts after that), or when its holder was
an earlier attempt of this same CI job (`ci_job`: GitHub's run id and job with a lower run
attempt, GitLab's pipeline and job name with a lower job id): a retried job is never kept
waiting by the attempt it replaces. Released at the end
of the run, however it ends (a conditional delete: only the holder's own lock).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from refarch.aws import AWS_EXCEPTIONS
from refarch.errors import AwsError, RefarchError

SORT_KEY = "lock"


class AccountBusy(RefarchError):
    """Another run holds an account lock this run needs: refused at once, never waited for."""

    exit_code = 2

    def __init__(self, account: str, holder: Mapping[str, Any]) -> None:
        self.account = account
        self.holder = dict(holder)
        who = ", ".join(
            f"{name} {holder[key]}"
            for key, name in (
                ("run_id", "run"),
                ("job_url", "job"),
                ("host", "host"),
                ("pid", "pid"),
                ("since", "since"),
            )
            if holder.get(key) not in (None, "")
        )
        super().__init__(
            f"account {account} is being changed by another refarch run: {who or 'holder unknown'}",
            hint="wait for that run to finish; a lock whose run died is released when its host sees "
            "the pid gone, or when its heartbeat is older than [ledger] lock_expiry",
        )


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Taken:
    """One lock this run holds: its table key and the account's name."""

    key: str
    account: str


class AccountLocks:
    """The account locks of one run in `table` (the shared ledger's)."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        run_id: str,
        expiry: float,
        job_url: str | None = None,
        host: str | None = None,
        pid: int | None = None,
        clock: Callable[[], float] = time.time,
        alive: Callable[[int], bool] = pid_alive,
        ci_job: Mapping[str, str] | None = None,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.run_id = run_id
        self.expiry = float(expiry)
        self.job_url = job_url or ""
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.clock = clock
        self.alive = alive
        self.ci_job = dict(ci_job or {})
        self.taken: list[Taken] = []
        self._lock = threading.Lock()

    # -- taking ----------------------------------------------------------------------------
    def acquire(self, accounts: Mapping[str, str]) -> list[str]:
        """Lock every account (key -> name, the key being its id), all or none. Returns the
        notices of dead holders' locks released on the way; raises AccountBusy."""
        notices: list[str] = []
        try:
            for key, name in sorted(accounts.items()):
                notice = self._take(key, name)
                if notice:
                    notices.append(notice)
        except BaseException:
            self.release()
            raise
        return notices

    def _take(self, key: str, name: str) -> str | None:
        now = self.clock()
        item = {
            "pk": {"S": f"lock#{key}"},
            "sk": {"S": SORT_KEY},
            "account": {"S": name},
            "run_id": {"S": self.run_id},
            "job_url": {"S": self.job_url},
            "host": {"S": self.host},
            "pid": {"N": str(self.pid)},
            "since": {"S": datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="seconds")},
            "heartbeat": {"N": repr(round(now, 3))},
        }
        if self.ci_job:
            item["ci_job"] = {"S": json.dumps(self.ci_job, sort_keys=True)}
        notice = None
        for _ in range(2):
            try:
                self.dynamodb.put_item(
                    TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
                )
            except AWS_EXCEPTIONS as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise _aws_error(f"could not lock account {name}", exc) from None
            else:
                with self._lock:
                    self.taken.append(Taken(key, name))
                return notice
            holder = self.holder(key)
            if holder is None:
                continue  # released between the put and the read: try again
            why = self.dead(holder)
            if why is None:
                raise AccountBusy(name, holder)
            if self._delete(key, holder):
                notice = (
                    f"released the lock on account {name} that run {holder.get('run_id')} left "
                    f"(host {holder.get('host')}, pid {holder.get('pid')}, "
                    f"since {holder.get('since')}): {why}"
                )
        raise AccountBusy(name, self.holder(key) or {})

    def holder(self, key: str) -> dict[str, Any] | None:
        """The current holder's record of account `key`'s lock, or None when free."""
        try:
            found = self.dynamodb.get_item(TableName=self.table, Key=_key(key), ConsistentRead=True).get(
                "Item"
            )
        except AWS_EXCEPTIONS as exc:
            raise _aws_error("could not read an account lock", exc) from None
        if not found:
            return None
        return {k: (v["S"] if "S" in v else _number(v.get("N", "0"))) for k, v in found.items()}

    def dead(self, holder: Mapping[str, Any]) -> str | None:
        """Why the holder's run is known dead, or None when it may be alive."""
        pid = holder.get("pid")
        if holder.get("host") == self.host and isinstance(pid, int) and not self.alive(pid):
            return f"its process {pid} on this host is gone"
        earlier = earlier_attempt(holder.get("ci_job"), self.ci_job)
        if earlier:
            return earlier
        beat = holder.get("heartbeat")
        if isinstance(beat, int | float) and self.clock() - beat > self.expiry:
            return f"no heartbeat for {self.clock() - beat:.0f}s (more than {self.expiry:.0f}s)"
        return None

    def _delete(self, key: str, holder: Mapping[str, Any]) -> bool:
        """Delete the dead holder's lock, only if it is still that one (same run, same beat)."""
        try:
            self.dynamodb.delete_item(
                TableName=self.table,
                Key=_key(key),
                ConditionExpression="run_id = :run AND heartbeat = :beat",
                ExpressionAttributeValues={
                    ":run": {"S": str(holder.get("run_id", ""))},
                    ":beat": {"N": repr(holder.get("heartbeat"))},
                },
            )
        except AWS_EXCEPTIONS as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False  # someone else released or renewed it
            raise _aws_error("could not release a dead run's account lock", exc) from None
        return True

    # -- holding and letting go ------------------------------------------------------------
    def heartbeat(self) -> None:
        """Renew every lock held (only while it is still ours)."""
        now = repr(round(self.clock(), 3))
        with self._lock:
            taken = list(self.taken)
        for lock in taken:
            with contextlib.suppress(*AWS_EXCEPTIONS):  # the next beat tries again
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key=_key(lock.key),
                    UpdateExpression="SET heartbeat = :now",
                    ConditionExpression="run_id = :run",
                    ExpressionAttributeValues={":now": {"N": now}, ":run": {"S": self.run_id}},
                )

    def release(self) -> None:
        """Let go of every lock this run holds (only its own: conditional on the run id)."""
        with self._lock:
            taken, self.taken = self.taken, []
        for lock in taken:
            with contextlib.suppress(*AWS_EXCEPTIONS):  # gone already, or expired and taken over
                self.dynamodb.delete_item(
                    TableName=self.table,
                    Key=_key(lock.key),
                    ConditionExpression="run_id = :run",
                    ExpressionAttributeValues={":run": {"S": self.run_id}},
                )

    @contextlib.contextmanager
    def held(self, accounts: Mapping[str, str], *, beat: bool = True) -> Iterator[list[str]]:
        """Hold the locks of `accounts` while the block runs, renewed by a heartbeat thread;
        released on every way out. Yields the notices of dead locks released."""
        notices = self.acquire(accounts)
        stop = threading.Event()
        thread = None
        if beat and self.taken:
            interval = max(1.0, self.expiry / 5)

            def renew() -> None:
                while not stop.wait(interval):
                    self.heartbeat()

            thread = threading.Thread(target=renew, name="refarch-account-locks", daemon=True)
            thread.start()
        try:
            yield notices
        finally:
            stop.set()
            if thread is not None:
                thread.join(5)
            self.release()


def ci_job_of(env: Mapping[str, str]) -> dict[str, str]:
    """This CI job's identity from the CI's own variables: GitHub (run id, job, run attempt),
    GitLab (pipeline id, job name, job id); empty outside CI."""
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_JOB"):
        return {
            "system": "github",
            "run": env["GITHUB_RUN_ID"],
            "job": env["GITHUB_JOB"],
            "attempt": env.get("GITHUB_RUN_ATTEMPT", "1"),
        }
    if env.get("CI_PIPELINE_ID") and env.get("CI_JOB_NAME") and env.get("CI_JOB_ID"):
        return {
            "system": "gitlab",
            "run": env["CI_PIPELINE_ID"],
            "job": env["CI_JOB_NAME"],
            "attempt": env["CI_JOB_ID"],
        }
    return {}


def earlier_attempt(held: Any, mine: Mapping[str, str]) -> str | None:
    """Why a lock's holder is known dead because it was an earlier attempt of this same CI job
    (same system, run and job; a lower attempt number or job id), or None."""
    if not mine or not isinstance(held, str):
        return None
    try:
        theirs = json.loads(held)
    except ValueError:
        return None
    if not isinstance(theirs, dict) or any(theirs.get(k) != mine.get(k) for k in ("system", "run", "job")):
        return None
    try:
        older = int(str(theirs.get("attempt"))) < int(mine.get("attempt", ""))
    except ValueError:
        return None
    if not older:
        return None
    word = "run attempt" if mine.get("system") == "github" else "job id"
    return (
        f"it was an earlier attempt of this CI job ({mine['job']} of {mine['run']}, {word} "
        f"{theirs.get('attempt')}; this is {mine.get('attempt')})"
    )


def accounts_of(units: Sequence[tuple[str | None, str]]) -> dict[str, str]:
    """The lock keys of (account id, account name) pairs: the id, else `name:<name>`."""
    return {(account_id or f"name:{name}"): name for account_id, name in units}


def _number(text: str) -> int | float:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _key(key: str) -> dict[str, Any]:
    return {"pk": {"S": f"lock#{key}"}, "sk": {"S": SORT_KEY}}


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _aws_error(what: str, exc: BaseException) -> AwsError:
    return AwsError(
        f"{what}: {str(exc).splitlines()[0][:300]}",
        hint="check the credentials reach the shared ledger's table ([ledger] in refarch.toml)",
    )
