"""The one place boto3 sessions are made: endpoint override, assume-role per account with
credentials that refresh before they expire, caching."""

from __future__ import annotations

import datetime
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import boto3
import botocore.exceptions
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials

from refarch.errors import AwsError, ConfigError, NoCredentials, WrongAccount
from refarch.models import Unit
from refarch.settings import Settings

CallHook = Callable[[str, str], None]  # (service, operation) for every API call made
Clock = Callable[[], datetime.datetime]  # now, timezone-aware: when credentials expire
# STS AssumeRole with these parameters -> its `Credentials` (AccessKeyId, SecretAccessKey,
# SessionToken, Expiration): the seam a test replaces with a fake STS.
AssumeRole = Callable[[Mapping[str, Any]], Mapping[str, Any]]
# The error codes of a request signed with credentials that expired: retried once, fresh.
EXPIRED_TOKEN_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})

# What a botocore call can raise: the library turns these into AwsError where it calls AWS,
# and the CLI's error boundary catches any that still escape.
AWS_EXCEPTIONS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)

# AWS's limits on an assumed role's session name (RoleSessionName): CloudTrail shows it.
SESSION_NAME_MAX = 64
_SESSION_NAME_CHARS = re.compile(r"[^\w+=,.@-]")

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})

# One botocore data loader for every session: each boto3.Session otherwise parses the service
# models again (~150 ms per client of a new session; a multi-account bootstrap makes dozens).
_LOADER = botocore.loaders.create_loader()


def new_session(credentials: Any = None, **kwargs: Any) -> boto3.Session:
    """A boto3 session sharing the process-wide model loader; with `credentials` (a botocore
    credentials object, refreshable or not) instead of keys."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    if credentials is not None:
        # botocore's way to hand a session refreshable credentials (set_credentials takes keys)
        core._credentials = credentials  # type: ignore[attr-defined]
    return boto3.Session(botocore_session=core, **kwargs)


def role_session_name(run_id: str | None, caller: str | None) -> str:
    """`refarch-<run-id>-<caller>` within AWS's 64 characters and charset ([\\w+=,.@-]), so
    CloudTrail names the run and who started it; the caller is cut first, then the run id."""
    parts = ["refarch"]
    for part in (run_id, caller):
        cleaned = _SESSION_NAME_CHARS.sub("-", part or "").strip("-")
        if cleaned:
            parts.append(cleaned)
    return "-".join(parts)[:SESSION_NAME_MAX].rstrip("-")


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AssumedRoleCredentials(RefreshableCredentials):
    """An assumed role's credentials: botocore assumes the role again before they expire
    (15 minutes ahead; at the latest 10), so a long run never hands out expired keys."""

    def expire_now(self) -> None:
        """Take the credentials as expired: the next use assumes the role again (after a
        request was refused with an expired token although the clock said otherwise)."""
        with self._refresh_lock:  # type: ignore[attr-defined]
            self._expiry_time = self._time_fetcher()  # type: ignore[attr-defined]


def _expired_token_retry(credentials: AssumedRoleCredentials) -> Callable[..., float | None]:
    """A `needs-retry` handler: a request refused for an expired token is retried once, at
    once, with fresh credentials (botocore's standard retries do not retry it)."""

    def needs_retry(response: Any = None, attempts: int = 0, **_: Any) -> float | None:
        if attempts != 1 or not isinstance(response, tuple) or len(response) != 2:
            return None
        parsed = response[1] if isinstance(response[1], dict) else {}
        if parsed.get("Error", {}).get("Code") not in EXPIRED_TOKEN_CODES:
            return None
        credentials.expire_now()
        return 0.0

    return needs_retry


class AwsSessions:
    """Sessions and clients per (account, region), assuming the account's role when needed.

    The base session comes from the standard AWS environment (or `settings.profile`);
    every client honours `settings.endpoint_url` (for moto, LocalStack or VPC endpoints).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        base_session: boto3.Session | None = None,
        on_call: CallHook | None = None,
        clock: Clock = _utc_now,
        assume_role: AssumeRole | None = None,
    ) -> None:
        self.settings = settings
        self.endpoint_url = settings.endpoint_url
        self._base = base_session
        self._on_call = on_call
        self._clock = clock
        self._assume_role = assume_role
        self._lock = threading.RLock()
        self._sessions: dict[tuple[str | None, str], boto3.Session] = {}
        self._caller: dict[int, dict[str, str]] = {}
        self.session_name = "refarch"  # RoleSessionName of every role assumed (name_sessions)

    def name_sessions(self, run_id: str | None, caller: str | None) -> str:
        """Name the role sessions assumed from now on (and every renewal) after the run and
        its caller, so CloudTrail shows who; returns the name."""
        with self._lock:
            self.session_name = role_session_name(run_id, caller)
            return self.session_name

    # -- sessions ------------------------------------------------------------------------
    def base(self) -> boto3.Session:
        """The caller's own session (profile / environment)."""
        with self._lock:
            if self._base is None:
                self._base = new_session(profile_name=self.settings.profile, region_name=self.settings.region)
            return self._base

    def session(
        self,
        account_id: str | None = None,
        account_name: str | None = None,
        region: str | None = None,
        *,
        role_arn: str | None = None,
    ) -> boto3.Session:
        """A session for `account_id`: the caller's own if it already is that account,
        else temporary credentials from assuming the account's role (cached).
        An explicit `role_arn` (a unit's `iam_role`) is always assumed."""
        region = region or self.settings.region
        key = (role_arn or account_id, region)
        with self._lock:
            if key in self._sessions:
                return self._sessions[key]
        base = self.base()
        if role_arn is not None:
            session = self._assume(base, role_arn, region, account_name or account_id or role_arn)
        elif account_id is None or self.caller_identity(base)["Account"] == account_id:
            creds = base.get_credentials()
            if creds is None:
                raise NoCredentials()
            session = new_session(creds, region_name=region)  # the caller's, refreshable if they are
        else:
            role_arn = self.settings.role_arn_for(account_name or account_id, account_id)
            session = self._assume(base, role_arn, region, account_name or account_id)
        with self._lock:
            self._sessions[key] = session
        return session

    def _assume(self, base: boto3.Session, role_arn: str, region: str, account: str) -> boto3.Session:
        """A session with `role_arn`'s credentials, assumed now and again before they expire."""
        params: dict[str, Any] = {"RoleArn": role_arn}
        access = self.settings.accounts.get(account)
        if access and access.external_id:
            params["ExternalId"] = access.external_id

        def fetch() -> dict[str, Any]:
            named = {**params, "RoleSessionName": self.session_name}  # the run's, when renewed too
            creds = self._call_assume_role(base, region, named, account)
            expiration = creds["Expiration"]
            if isinstance(expiration, str):
                expiration = datetime.datetime.fromisoformat(expiration.replace("Z", "+00:00"))
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": expiration.isoformat(),
            }

        first = fetch()  # now: a role that cannot be assumed is an error here, not later
        credentials = AssumedRoleCredentials(
            first["access_key"],
            first["secret_key"],
            first["token"],
            datetime.datetime.fromisoformat(first["expiry_time"]),
            fetch,
            "assume-role",
            time_fetcher=self._clock,
        )
        return new_session(credentials, region_name=region)

    def _call_assume_role(
        self, base: boto3.Session, region: str, params: Mapping[str, Any], account: str
    ) -> Mapping[str, Any]:
        role_arn = params["RoleArn"]
        try:
            if self._assume_role is not None:
                return self._assume_role(params)
            sts = self._client_from(base, "sts", region)
            result: Mapping[str, Any] = sts.assume_role(**params)["Credentials"]
            return result
        except botocore.exceptions.NoCredentialsError:
            raise NoCredentials(f"no AWS credentials to assume {role_arn} with") from None
        except AWS_EXCEPTIONS as exc:
            raise AwsError(
                f"could not assume {role_arn} for account {account}: {exc}",
                hint="check the role name/pattern in refarch.toml and that your identity may assume it",
            ) from None

    # -- clients -------------------------------------------------------------------------
    def client(
        self,
        service: str,
        account_id: str | None = None,
        region: str | None = None,
        account_name: str | None = None,
        *,
        role_arn: str | None = None,
    ) -> Any:
        """A boto3 client for `service` in the account and region, with the endpoint override
        (through `role_arn` when given: a unit's own `iam_role`)."""
        session = self.session(account_id, account_name, region, role_arn=role_arn)
        return self._client_from(session, service, region or self.settings.region)

    def _client_from(self, session: boto3.Session, service: str, region: str) -> Any:
        client = session.client(  # type: ignore[call-overload]
            service, region_name=region, endpoint_url=self.endpoint_url, config=RETRY_CONFIG
        )
        credentials = session.get_credentials()
        if isinstance(credentials, AssumedRoleCredentials):
            client.meta.events.register("needs-retry", _expired_token_retry(credentials))
        if self._on_call is not None:
            hook = self._on_call

            def count(model: Any, **_: Any) -> None:
                hook(service, model.name)

            client.meta.events.register("before-call.*.*", count)
        return client

    # -- identity ------------------------------------------------------------------------
    def caller_identity(self, session: boto3.Session | None = None) -> dict[str, str]:
        """STS GetCallerIdentity for a session (cached per session)."""
        session = session or self.base()
        with self._lock:
            if id(session) in self._caller:
                return self._caller[id(session)]
        sts = self._client_from(session, "sts", session.region_name or self.settings.region)
        try:
            ident = sts.get_caller_identity()
        except botocore.exceptions.NoCredentialsError:
            raise NoCredentials() from None
        except AWS_EXCEPTIONS as exc:
            raise AwsError(
                f"could not identify the AWS caller: {exc}",
                hint="check your credentials, or --endpoint-url for an emulator",
            ) from None
        result = {k: ident[k] for k in ("Account", "Arn", "UserId")}
        with self._lock:
            self._caller[id(session)] = result
        return result

    def check_account(self, unit: str, expected: str | None, session: boto3.Session) -> str:
        """The wrong-account guard: raise WrongAccount unless the session is in `expected`."""
        actual = self.caller_identity(session)["Account"]
        if expected is not None and actual != expected:
            raise WrongAccount(unit, expected, actual)
        return actual

    def credentials_env(
        self,
        account_id: str | None = None,
        region: str | None = None,
        account_name: str | None = None,
        *,
        role_arn: str | None = None,
    ) -> dict[str, str]:
        """Environment variables that hand this account's credentials to a child process:
        fresh ones (an assumed role's are renewed when they are near their expiry)."""
        session = self.session(account_id, account_name, region, role_arn=role_arn)
        creds = session.get_credentials()
        if creds is None:
            raise NoCredentials()
        frozen = creds.get_frozen_credentials()
        env = {
            "AWS_ACCESS_KEY_ID": str(frozen.access_key),
            "AWS_SECRET_ACCESS_KEY": str(frozen.secret_key),
            "AWS_REGION": region or self.settings.region,
            "AWS_DEFAULT_REGION": region or self.settings.region,
        }
        if frozen.token:
            env["AWS_SESSION_TOKEN"] = frozen.token
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return env


def refuse_unknown_accounts(units: Iterable[Unit], action: str) -> None:
    """The wrong-account guard is never silently off: `action` (apply, destroy) is refused
    for units whose account id is unknown, unless the caller opted out explicitly."""
    unknown = [unit for unit in units if unit.account_id is None]
    if not unknown:
        return
    listing = "\n".join(f"  {unit.path} (account {unit.account})" for unit in unknown)
    raise ConfigError(
        f"refusing to {action} {len(unknown)} unit(s) whose AWS account id is unknown, so the "
        f"wrong-account guard cannot check them:\n{listing}",
        hint='add aws_account_id = "111111111111" (the 12-digit id) to the locals of the '
        "account.hcl above each unit, or pass --allow-unknown-account to run them in whatever "
        "account the credentials reach",
    )


REAL_KEY_PREFIXES = ("AKIA", "ASIA")


def real_credentials_without_endpoint(env: Mapping[str, str]) -> bool:
    """True when the environment holds real-looking AWS keys and no endpoint override:
    the test suite refuses to run then, so it can never touch a real account."""
    key = env.get("AWS_ACCESS_KEY_ID", "")
    has_real = (key.startswith(REAL_KEY_PREFIXES) and len(key) == 20) or bool(env.get("AWS_PROFILE"))
    return has_real and not env.get("AWS_ENDPOINT_URL")
