"""Account locks: one item per account in the shared ledger's table, so two pipelines never
apply or destroy the same account at once (the repo lock only guards one machine).

A lock is taken with a conditional put (it must not exist) for every account of the run
before any unit starts, all or none; a second run is refused at once, naming the holder.
While held, a heartbeat renews it every `expiry / 5` seconds; a beat that fails is reported
(`on_trouble`), and one refused because the lock is no longer ours marks it lost. Before each
unit starts, the run fences itself: `confirm()` renews the unit's account lock with a
conditional write, so a run that was paused past `expiry` (SIGSTOP, a suspended laptop) and
lost its lock to another run learns it from the table, not from a cached belief, and starts
nothing more.

The holder is a process, told apart across hosts, reboots and pid namespaces by host name,
boot id, pid namespace, pid and the process's start time, and in CI by its job (`ci_job`). A
lock is known dead, and is released with a notice, when its holder ran on this host, in this
boot and this pid namespace and its process is gone (or the pid now belongs to a process that
started later), or when its holder was an earlier attempt of this same CI job (GitHub's run id
and job with a lower run attempt, GitLab's pipeline and job name with a lower job id: a
retried job is never kept waiting by the attempt it replaces), or when its
heartbeat is older than `expiry` ([ledger] lock_expiry, 15 minutes by default: a runner killed
with SIGKILL on another machine frees its accounts after that). Only the first is proof that
the holder is dead (`Replaced.proven`); a holder judged by its heartbeat alone may be a paused
process that wakes up. Released at the end of the run, however it ends (a conditional delete:
only the holder's own lock).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from refarch.aws import AWS_EXCEPTIONS
from refarch.errors import AwsError, RefarchError, RefarchWarning

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
            hint="wait for that run to finish; a lock whose run died is released when a runner in the "
            "same host, boot and pid namespace sees its process gone, or when its heartbeat is older "
            "than [ledger] lock_expiry",
        )


class AccountLockLost(RefarchError):
    """This run no longer holds an account lock it needs: it starts no more units."""

    exit_code = 1

    def __init__(self, account: str, reason: str) -> None:
        self.account = account
        self.reason = reason
        super().__init__(
            f"lost the lock on account {account}: {reason}",
            hint="another run may be changing that account now; look at `refarch history`, then "
            "re-run (or `--resume`) once it has finished",
        )


def _read(path: str) -> str:
    try:
        with Path(path).open(encoding="ascii") as file:
            return file.read(4096).strip()
    except (OSError, UnicodeDecodeError):
        return ""


def start_time(pid: int | str = "self") -> str:
    """When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat` field 22),
    as this process's /proc shows it; "" when unknown."""
    stat = _read(f"/proc/{pid}/stat")
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces and ')'
    return fields[19] if len(fields) > 19 else ""


def process_identity() -> dict[str, str]:
    """What tells this process apart from any other, across hosts, reboots and pid
    namespaces: the kernel's boot id, the pid namespace and the process's start time; plus
    whether /proc is this namespace's (only then are other pids checkable through it)."""
    try:
        namespace = str(Path("/proc/self/ns/pid").readlink())
    except OSError:
        namespace = ""
    own_proc = _read("/proc/self/stat").split(" ", 1)[0] == str(os.getpid())
    return {
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "pid_ns": namespace if own_proc else "",  # "" : pids of this namespace are not checkable
        "started": start_time(),
    }


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


@dataclass(frozen=True)
class Replaced:
    """A dead holder's lock this run released to take it: `proven` when its process is known
    gone (this host, boot and pid namespace), not only silent past the expiry."""

    account: str
    run_id: str
    why: str
    proven: bool


# Told about a failed heartbeat: the account, why, and whether the lock is lost for good.
TroubleCallback = Callable[[str, str, bool], None]


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
        identity: Mapping[str, str] | None = None,
        started_at: Callable[[int], str] = start_time,
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
        self.identity = dict(process_identity() if identity is None else identity)
        self.started_at = started_at
        self.ci_job = dict(ci_job or {})
        self.taken: list[Taken] = []
        self.replaced: list[Replaced] = []
        self.notices: list[str] = []  # dead holders' locks released on the way
        self.lost: dict[str, str] = {}  # key -> why: locks found to be someone else's
        self.on_trouble: TroubleCallback | None = None
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
        self.notices.extend(notices)
        return notices

    def proven_dead(self, run_id: str) -> bool:
        """False when this run took over a lock of run `run_id` for its silence alone (the
        holder may be a paused process that wakes up); True otherwise."""
        return all(r.proven for r in self.replaced if r.run_id == run_id)

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
            **{field: {"S": value} for field, value in self.identity.items()},
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
                proven = self.gone(holder) is not None
                self.replaced.append(Replaced(name, str(holder.get("run_id", "")), why, proven))
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
        holder: dict[str, Any] = {}
        for name, typed in found.items():
            value = _value(typed)
            if value is not None:
                holder[name] = value
        kinds = {"run_id": str, "host": str, "pid": int, "heartbeat": int | float}
        wrong = sorted(n for n, kind in kinds.items() if not isinstance(holder.get(n), kind))
        if wrong:  # edited by hand, or not refarch's: never judged dead, never taken
            warnings.warn(
                f"shared ledger table {self.table}, item pk='lock#{key}' sk='{SORT_KEY}': an account "
                f"lock without a valid {', '.join(wrong)}; it never expires: delete that item once "
                "you know no run holds the account",
                RefarchWarning,
                stacklevel=2,
            )
            holder = {n: v for n, v in holder.items() if n not in wrong}
        return holder

    def gone(self, holder: Mapping[str, Any]) -> str | None:
        """Why the holder's process is known gone, or None when it may be alive: only a
        holder in this host's boot and pid namespace can be checked (a runner in another
        container with the same host name has pids of its own), or one that was an earlier
        attempt of this CI job (a retry starts only once that attempt has ended)."""
        earlier = earlier_attempt(holder.get("ci_job"), self.ci_job)
        if earlier:
            return earlier
        pid = holder.get("pid")
        if not isinstance(pid, int) or holder.get("host") != self.host:
            return None
        mine = self.identity
        if not (mine.get("boot_id") and mine.get("pid_ns")):
            return None
        if holder.get("boot_id") != mine["boot_id"] or holder.get("pid_ns") != mine["pid_ns"]:
            return None
        if not self.alive(pid):
            return f"its process {pid} on this host is gone"
        then, now = str(holder.get("started") or ""), self.started_at(pid)
        if then and now and then != now:
            return f"its process {pid} on this host is gone (the pid is another process's now)"
        return None

    def dead(self, holder: Mapping[str, Any]) -> str | None:
        """Why the holder's run is known dead, or None when it may be alive."""
        gone = self.gone(holder)
        if gone is not None:
            return gone
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
    def _renew(self, key: str) -> str | None:
        """Renew one lock with a conditional write (it must still be this run's). Returns
        None when renewed, else why not; a lock found to be someone else's is marked lost."""
        if key in self.lost:
            return self.lost[key]
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=_key(key),
                UpdateExpression="SET heartbeat = :now",
                ConditionExpression="run_id = :run",
                ExpressionAttributeValues={
                    ":now": {"N": repr(round(self.clock(), 3))},
                    ":run": {"S": self.run_id},
                },
            )
        except AWS_EXCEPTIONS as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                return f"could not renew it: {str(exc).splitlines()[0][:200]}"
            holder = self.holder(key)
            why = (
                f"run {holder.get('run_id')} (host {holder.get('host')}) holds it now"
                if holder
                else "it was released by another run"
            )
            with self._lock:
                self.lost[key] = why
            return why
        return None

    def heartbeat(self) -> None:
        """Renew every lock held (only while it is still ours); tell `on_trouble` of each
        beat that failed and whether the lock is lost."""
        with self._lock:
            taken = list(self.taken)
        for lock in taken:
            if lock.key in self.lost:
                continue  # reported when it was found lost
            try:
                why = self._renew(lock.key)
            except AwsError as exc:  # reading the new holder failed: the next beat tries again
                why = str(exc)
            if why is not None and self.on_trouble is not None:
                self.on_trouble(lock.account, why, lock.key in self.lost)

    def confirm(self, key: str) -> None:
        """Fence: prove with a conditional write that this run still holds account `key`'s
        lock, before a unit of it starts. Raises AccountLockLost when it does not, or when
        that cannot be shown (the table unreachable)."""
        with self._lock:
            account = next((t.account for t in self.taken if t.key == key), None)
        if account is None:
            raise AccountLockLost(key.removeprefix("name:"), "this run never held it")
        try:
            why = self._renew(key)
        except AwsError as exc:
            why = str(exc)
        if why is not None:
            raise AccountLockLost(account, why)

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


def lock_key(account_id: str | None, name: str) -> str:
    """The lock key of an account: its id, else `name:<name>`."""
    return account_id or f"name:{name}"


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
    """The lock keys of (account id, account name) pairs."""
    return {lock_key(account_id, name): name for account_id, name in units}


def _value(typed: Any) -> str | int | float | None:
    """A string or number attribute of a lock item; None for anything else."""
    if not isinstance(typed, Mapping):
        return None
    if isinstance(typed.get("S"), str):
        return str(typed["S"])
    text = typed.get("N")
    if not isinstance(text, str):
        return None
    try:
        return int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        return None


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
