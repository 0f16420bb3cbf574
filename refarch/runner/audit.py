"""Who runs a run, from where, at which commit, as whom: the ledger's audit trail."""

from __future__ import annotations

import contextlib
import getpass
import socket
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from refarch.aws import AwsSessions
from refarch.errors import RefarchError, ToolNotFound
from refarch.exec.masking import Masker
from refarch.exec.process import capture
from refarch.models import Unit
from refarch.runner.context import UnitCredentials
from refarch.runner.ledger import ci_context


def who_runs(sessions: AwsSessions | None, env: Mapping[str, str], run_id: str) -> dict[str, str]:
    """Who runs run `run_id` (`_who`); with refarch's own sessions, every role it assumes is
    named for the run and its caller, so CloudTrail shows both."""
    who = _who(sessions, env)
    if sessions is not None:
        caller = who.get("actor") or who.get("caller", "").rsplit("/", 1)[-1] or who["user"]
        who["session_name"] = sessions.name_sessions(run_id, caller)
    return who


def identities(
    credentials: UnitCredentials, units: list[Unit], masker: Masker
) -> dict[str, Mapping[str, str]]:
    """The caller identity per account (and role) of the run, for the ledger's audit trail.
    A failure here is recorded, not raised: that account's units fail with the full message."""
    seen: dict[str, Mapping[str, str]] = {}
    for unit in units:
        key = unit.account if not unit.iam_role else f"{unit.account} ({unit.iam_role})"
        if key in seen:
            continue
        try:
            seen[key] = dict(credentials.for_unit(unit).identity)
        except RefarchError as exc:
            seen[key] = {"error": masker.mask(str(exc))}
    return seen


def git_commit(root: Path, env: Mapping[str, str]) -> str | None:
    """The commit checked out in `root`, or None (no git, not a repository)."""
    try:
        result = capture(["git", "-C", str(root), "rev-parse", "HEAD"], cwd=root, env=env)
    except ToolNotFound:
        return None
    return result.stdout_tail.strip() if result.ok else None


def git_branch(root: Path, env: Mapping[str, str]) -> str | None:
    """The branch checked out in `root`, or None (no git, or a detached checkout)."""
    try:
        result = capture(["git", "-C", str(root), "rev-parse", "--abbrev-ref", "HEAD"], cwd=root, env=env)
    except ToolNotFound:
        return None
    branch = result.stdout_tail.strip() if result.ok else ""
    return branch if branch and branch != "HEAD" else None  # HEAD: a detached checkout


def _who(sessions: AwsSessions | None, env: Mapping[str, str]) -> dict[str, str]:
    """Who runs this, for the audit trail: the CI's actor, job URL, branch and commit, the
    local user and host, and the base AWS identity (before any role is assumed)."""
    who = {"user": _user(), "host": socket.gethostname(), **ci_context(env)}
    if sessions is not None:
        with contextlib.suppress(RefarchError):  # no identity: the units fail on it, saying why
            who["caller"] = sessions.caller_identity(sessions.base())["Arn"]
    return who


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def refarch_version() -> str:
    """The installed refarch's version, recorded with each run and each saved plan."""
    try:
        return metadata.version("refarch")
    except metadata.PackageNotFoundError:
        return "unknown"
