"""Which failures are worth another attempt: a catalogue of rules (data) and a pure decide().

The sleeping loop lives in the runner; this module only answers "retry? after how long?
with which remedy?", so it is tested without sleeping or spawning anything.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from refarch.errors import ConfigError
from refarch.run.process import ProcessResult
from refarch.settings import Settings

BACKOFFS = ("fixed", "exponential")
# Remedies the runner knows how to apply to the next attempt.
REMEDIES = ("refresh_modules", "wait_for_lock", "refresh_credentials")
DEFAULT_LOCK_TIMEOUT = "5m"


@dataclass(frozen=True)
class RetryRule:
    """A known transient failure: a regex over the output tail, and how to try again."""

    name: str
    pattern: str
    attempts: int = 3  # total attempts, the first one included
    backoff: str = "exponential"
    delay: float = 5.0  # seconds before the second attempt
    max_delay: float = 60.0
    jitter: float = 0.2  # +-20% spread so units hitting the same limit do not retry together
    remedy: str | None = None
    origin: str = "refarch"  # "terragrunt" | "refarch" | "user": where the rule comes from
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern, re.DOTALL))

    def matches(self, text: str) -> bool:
        """True when the pattern is found anywhere in `text`."""
        return self.regex.search(text) is not None

    def delay_for(self, attempt: int, rand: Callable[[], float]) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        base = self.delay if self.backoff == "fixed" else self.delay * 2 ** (attempt - 1)
        base = min(base, self.max_delay)
        spread = base * self.jitter * (2 * rand() - 1)
        return max(0.0, base + spread)


@dataclass(frozen=True)
class Decision:
    """The answer of decide(): whether to try again, when, why and with which remedy."""

    retry: bool
    reason: str
    rule: RetryRule | None = None
    delay: float = 0.0
    remedy: str | None = None


# Terragrunt's default retryable errors (internal/retry/defaults.go, DefaultRetryableErrors),
# which it matches against the tool's output and retries 3 times, 5 s apart. We keep its
# patterns as they are and give them exponential backoff with jitter instead of a fixed sleep.
TERRAGRUNT_RETRYABLE_ERRORS: tuple[str, ...] = (
    r"(?s).*Failed to load state.*tcp.*timeout.*",
    r"(?s).*Failed to load backend.*TLS handshake timeout.*",
    r"(?s).*Creating metric alarm failed.*request to update this alarm is in progress.*",
    r"(?s).*Error installing provider.*TLS handshake timeout.*",
    r"(?s).*Error configuring the backend.*TLS handshake timeout.*",
    r"(?s).*Error installing provider.*tcp.*timeout.*",
    r"(?s).*Error installing provider.*tcp.*connection reset by peer.*",
    r"NoSuchBucket: The specified bucket does not exist",
    r"(?s).*Error creating SSM parameter: TooManyUpdates:.*",
    r"(?s).*app.terraform.io.*: 429 Too Many Requests.*",
    r"(?s).*ssh_exchange_identification.*Connection closed by remote host.*",
    r"(?s).*Client\.Timeout exceeded while awaiting headers.*",
    r"(?s).*Could not download module.*The requested URL returned error: 429.*",
    r"(?s).*net/http: TLS.*handshake timeout.*",
    r"(?s).*could not query provider registry.*context deadline exceeded.*",
    r"(?s).*provider.*TLS handshake timeout.*",
    r"(?s).*provider.*tcp.*timeout.*",
    r"(?s).*provider.*tcp.*connection reset by peer.*",
    r"(?s).*provider.*context deadline exceeded.*",
    r"(?s).*registry.*context deadline exceeded.*",
    r"(?s).*Failed to resolve provider.*timeout.*",
    r"(?s).*Failed to resolve provider.*connection reset by peer.*",
    r"(?s).*Failed to resolve provider.*context deadline exceeded.*",
    r"(?s).*could not connect to registry.*timeout.*",
    r"(?s).*could not connect to registry.*connection reset by peer.*",
    r"(?s).*could not connect to registry.*context deadline exceeded.*",
    r"(?s).*failed to request discovery document.*context deadline exceeded.*",
    r"(?s).*Failed to query available provider packages.*timeout.*",
    r"(?s).*Failed to query available provider packages.*connection reset by peer.*",
    r"(?s).*Failed to query available provider packages.*context deadline exceeded.*",
)


def _leading_any_free(pattern: str) -> str:
    """Terragrunt's patterns are full-match (`(?s).*X.*`); we search, so the `.*` ends only
    cost time on long outputs. Strip them; the meaning under search() is the same."""
    body = pattern.removeprefix("(?s)")
    body = body.removeprefix(".*")
    return body.removesuffix(".*")


TERRAGRUNT_RULES: tuple[RetryRule, ...] = tuple(
    RetryRule(f"terragrunt-{i:02d}", _leading_any_free(p), attempts=3, origin="terragrunt")
    for i, p in enumerate(TERRAGRUNT_RETRYABLE_ERRORS, start=1)
)

# Beyond Terragrunt: what the reference architecture's deploy guide warns about, and the
# eventual consistency of freshly created accounts, roles and keys.
REFARCH_RULES: tuple[RetryRule, ...] = (
    RetryRule(
        "state-lock",
        r"Error acquiring the state lock",
        attempts=2,
        delay=5.0,
        remedy="wait_for_lock",  # next attempt waits up to the lock timeout; never force-unlock
    ),
    RetryRule(
        "modules-not-installed",
        r"(?s)Error loading modules.*not found.*terraform init|Module not installed"
        r"|Module source has changed",
        attempts=2,
        delay=0.0,
        jitter=0.0,
        remedy="refresh_modules",
    ),
    RetryRule("tls-handshake-timeout", r"TLS handshake timeout", attempts=4),
    RetryRule(
        "alarm-update-in-progress",
        r"request to update this alarm is in progress",
        attempts=5,
    ),
    RetryRule(
        "iam-not-yet-visible",
        r"(?i)invalid iam instance profile|iamInstanceProfile\.(?:name|arn) is invalid"
        r"|cannot be assumed by|MalformedPolicyDocument: Invalid principal"
        r"|instance profile .{0,80} (?:not found|does not exist)",
        attempts=5,
        delay=10.0,
        max_delay=90.0,
    ),
    RetryRule(
        "credentials-not-yet-valid",
        r"InvalidClientTokenId|The security token included in the request is invalid",
        attempts=4,
        delay=10.0,
    ),
    RetryRule(
        "credentials-expired",  # a long run: the unit's keys expired; once, with fresh ones
        r"ExpiredToken|The security token included in the request is expired|RequestExpired",
        attempts=2,
        delay=0.0,
        jitter=0.0,
        remedy="refresh_credentials",
    ),
    RetryRule(
        "kms-key-pending",
        r"KMSInvalidStateException|is pending (?:creation|import)|KeyUnavailableException",
        attempts=5,
        delay=10.0,
    ),
    RetryRule("throttled", r"ThrottlingException|Rate exceeded|TooManyRequestsException", attempts=5),
)

DEFAULT_RULES: tuple[RetryRule, ...] = REFARCH_RULES + TERRAGRUNT_RULES

# Packer's transient failures (refarch.provision.amis puts them ahead of the defaults for
# `packer build`; Terraform runs do not use them).
PACKER_RULES: tuple[RetryRule, ...] = (
    # Verified: what Packer 1.6.6 prints when the EC2 endpoint drops the connection
    # ("Error querying AMI: RequestError: send request failed ... connection refused").
    RetryRule("packer-request-failed", r"RequestError: send request failed", attempts=3),
    # AWS's documented EC2 error codes, which Packer prints verbatim after the failed step.
    RetryRule("packer-throttled", r"RequestLimitExceeded|Throttling", attempts=5),
    RetryRule(
        "packer-no-capacity",
        r"InsufficientInstanceCapacity|InsufficientCapacity",
        attempts=3,
        delay=30.0,
        max_delay=120.0,
    ),
    RetryRule(
        "packer-not-yet-visible",
        r"InvalidAMIID\.NotFound|InvalidInstanceID\.NotFound|InvalidSnapshot\.NotFound",
        attempts=3,
        delay=10.0,
    ),
    RetryRule("packer-waiter-timeout", r"ResourceNotReady: exceeded wait attempts", attempts=2, delay=30.0),
    RetryRule("packer-ssh-timeout", r"Timeout waiting for SSH", attempts=2, delay=10.0),
)


def decide(
    rules: Sequence[RetryRule],
    result: ProcessResult,
    attempt: int,
    *,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """Whether the attempt numbered `attempt` (1-based) that ended in `result` is retried.

    The first rule whose pattern is found in the output tail decides. A success, an
    interrupted process, or a failure no rule knows is never retried.
    """
    if result.ok:
        return Decision(False, "succeeded")
    if result.interrupted:
        return Decision(False, "interrupted")
    text = result.output_tail
    for rule in rules:
        if not rule.matches(text):
            continue
        if attempt >= rule.attempts:
            return Decision(False, f"{rule.name}: gave up after {attempt} attempts", rule)
        return Decision(
            True,
            f"{rule.name}: attempt {attempt} of {rule.attempts} failed, retrying",
            rule,
            delay=rule.delay_for(attempt, rand),
            remedy=rule.remedy,
        )
    return Decision(False, "no retry rule matches this failure")


def rules_from_settings(settings: Settings) -> tuple[RetryRule, ...]:
    """User rules from `[retry]` in refarch.toml, ahead of the defaults (first match wins).

    ```toml
    [retry]
    defaults = true           # false drops the built-in catalogue
    [[retry.rules]]
    name = "flaky-registry"
    pattern = "registry.example.com.*503"
    attempts = 4              # optional: backoff, delay, max_delay, jitter, remedy
    ```
    """
    section = settings.section("retry")
    unknown = set(section) - {"defaults", "rules", "lock_timeout"}
    if unknown:
        raise ConfigError(
            f"[retry]: unknown key(s) {', '.join(sorted(unknown))}",
            path=settings.path,
            hint="known keys: defaults, lock_timeout, rules",
        )
    user = tuple(_rule(raw, i, settings) for i, raw in enumerate(_list(section, settings)))
    defaults = section.get("defaults", True)
    return user + (DEFAULT_RULES if defaults else ())


def lock_timeout_from_settings(settings: Settings) -> str:
    """How long a retried attempt waits for a state lock (`[retry] lock_timeout`)."""
    value = settings.section("retry").get("lock_timeout", DEFAULT_LOCK_TIMEOUT)
    if not (isinstance(value, str) and re.fullmatch(r"\d+[smh]", value)):
        raise ConfigError(f"[retry] lock_timeout must look like '5m', got {value!r}", path=settings.path)
    return value


def _list(section: Mapping[str, Any], settings: Settings) -> Iterable[Any]:
    raw = section.get("rules", [])
    if not isinstance(raw, list):
        raise ConfigError(
            "[retry] rules must be an array of tables",
            path=settings.path,
            hint="write each rule as [[retry.rules]]",
        )
    return raw


def _rule(raw: Any, index: int, settings: Settings) -> RetryRule:
    where = f"[[retry.rules]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table", path=settings.path)
    allowed = {"name", "pattern", "attempts", "backoff", "delay", "max_delay", "jitter", "remedy"}
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
            path=settings.path,
            hint=f"known keys: {', '.join(sorted(allowed))}",
        )
    if not isinstance(raw.get("pattern"), str):
        raise ConfigError(f"{where} needs a `pattern` (a regular expression)", path=settings.path)
    try:
        re.compile(raw["pattern"])
    except re.error as exc:
        raise ConfigError(f"{where}: pattern is not a valid regex: {exc}", path=settings.path) from None
    if raw.get("backoff", "exponential") not in BACKOFFS:
        raise ConfigError(f"{where}: backoff must be one of {', '.join(BACKOFFS)}", path=settings.path)
    if raw.get("remedy") is not None and raw["remedy"] not in REMEDIES:
        raise ConfigError(f"{where}: remedy must be one of {', '.join(REMEDIES)}", path=settings.path)
    attempts = raw.get("attempts", 3)
    if not isinstance(attempts, int) or attempts < 1:
        raise ConfigError(f"{where}: attempts must be a positive integer", path=settings.path)
    try:
        return RetryRule(
            name=str(raw.get("name", f"user-{index + 1}")),
            pattern=raw["pattern"],
            attempts=attempts,
            backoff=raw.get("backoff", "exponential"),
            delay=float(raw.get("delay", 5.0)),
            max_delay=float(raw.get("max_delay", 60.0)),
            jitter=float(raw.get("jitter", 0.2)),
            remedy=raw.get("remedy"),
            origin="user",
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}", path=settings.path) from None
