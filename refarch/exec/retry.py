"""Which failures are worth another attempt: a catalogue of rules (data), a pure decide(),
and the one attempt loop that unit runs and Packer builds share.

decide() only answers "retry? after how long? with which remedy?", so it is tested without
sleeping or spawning anything; attempt_loop() takes its `sleep` as a parameter.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from refarch.exec.process import ProcessResult
from refarch.models import ErrorRule
from refarch.patterns import Pattern, compile_pattern
from refarch.settings import Settings
from refarch.terragrunt_defaults import TERRAGRUNT_RETRYABLE_ERRORS

BACKOFFS = ("fixed", "exponential")
# Remedies the runner knows how to apply to the next attempt.
REMEDIES = ("refresh_modules", "wait_for_lock", "refresh_credentials")


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
    hint: str | None = None  # what the user can do when the failure stays (shown, never run)
    regex: Pattern = field(init=False, repr=False, compare=False)  # RE2: linear in the output

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", compile_pattern(self.pattern, dot_matches_newline=True))

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
    """The answer of decide(): whether to try again, when, why and with which remedy; or
    (a unit's `errors { ignore }` block) that the failure is ignored: the unit succeeds."""

    retry: bool
    reason: str
    rule: RetryRule | None = None
    delay: float = 0.0
    remedy: str | None = None
    ignored: bool = False
    signals: Mapping[str, Any] = field(default_factory=dict)
    hint: str | None = None  # of the first matching rule that has one, when not retried


# Terragrunt matches errors blocks against the error text with everything but these
# characters turned into spaces, and runs of spaces made one (errorconfig.ExtractErrorMessage).
_ERROR_CLEAN = re.compile(r"[^a-zA-Z0-9./'\"():=\- ]+")


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def terragrunt_error_text(text: str) -> str:
    """The output as Terragrunt's errors blocks see it: colours removed, one cleaned line."""
    return " ".join(_ERROR_CLEAN.sub(" ", _ANSI.sub("", text)).split())


def matches_patterns(patterns: Sequence[str], text: str) -> bool:
    """Terragrunt's rule: the first pattern found decides; a `!pattern` found means no."""
    for raw in patterns:
        negative = raw.startswith("!")
        if compile_pattern(raw[1:] if negative else raw).search(text):
            return not negative
    return False


@dataclass(frozen=True)
class UnitRetryRule(RetryRule):
    """A unit's `errors { retry "name" }` block: Terragrunt's patterns over the cleaned text,
    a fixed sleep between attempts."""

    patterns: tuple[str, ...] = ()

    def matches(self, text: str) -> bool:
        return matches_patterns(self.patterns, terragrunt_error_text(text))


@dataclass(frozen=True)
class UnitRules:
    """The rules one unit runs with: what is retried (first match wins) and what is ignored."""

    retry: tuple[RetryRule, ...]
    ignore: tuple[ErrorRule, ...] = ()


def unit_rules(rules: Sequence[RetryRule], errors: Sequence[ErrorRule]) -> UnitRules:
    """The global rules combined with a unit's errors blocks: its retry blocks come first;
    when it has any, Terragrunt's default list gives way to them (as in Terragrunt, where an
    errors block replaces the defaults), refarch's own and refarch.toml's rules stay."""
    own = tuple(
        UnitRetryRule(
            f"errors.retry.{e.name}",
            re.escape(", ".join(e.patterns)),  # for display: matches() uses the patterns
            attempts=e.max_attempts,
            backoff="fixed",
            delay=e.sleep_seconds,
            max_delay=e.sleep_seconds,
            jitter=0.0,
            origin="unit",
            patterns=e.patterns,
        )
        for e in errors
        if e.kind == "retry"
    )
    rest = tuple(r for r in rules if not (own and r.origin == "terragrunt"))
    return UnitRules(own + rest, tuple(e for e in errors if e.kind == "ignore"))


def decide_for_unit(
    rules: UnitRules,
    result: ProcessResult,
    attempt: int,
    *,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """decide() for one unit: a failure one of its ignore blocks matches is ignored (the unit
    succeeds, with the block's message and signals), else its retry rules decide."""
    if not result.ok and not result.interrupted and rules.ignore:
        text = terragrunt_error_text(result.output_tail)
        for block in rules.ignore:
            if matches_patterns(block.patterns, text):
                why = f": {block.message}" if block.message else ""
                return Decision(
                    False,
                    f"error ignored by errors.ignore.{block.name}{why}",
                    ignored=True,
                    signals=block.signals,
                )
    return decide(rules.retry, result, attempt, rand=rand)


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
        remedy="wait_for_lock",  # next attempt waits up to the lock timeout; only its own lock is released
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

# Failures no retry fixes, known only to explain them: after every retry rule (so a transient
# one is still retried first), attempts = 1. decide() adds the hint of the first rule with one.
DIAGNOSIS_RULES: tuple[RetryRule, ...] = (
    RetryRule(
        "provider-download",
        r"Failed to query available provider packages|Failed to install provider"
        r"|Error installing provider|Failed to resolve provider packages"
        r"|could not connect to registry\.terraform\.io|Failed to request discovery document"
        r"|Incomplete lock file information for providers",
        attempts=1,
        hint="Terraform could not download a provider: check this machine's network (and "
        "HTTPS_PROXY) to registry.terraform.io, or use a provider mirror (provider_installation "
        "in ~/.terraformrc or TF_CLI_CONFIG_FILE; `terraform providers mirror DIR` fills one), "
        "or fill the plugin cache (TF_PLUGIN_CACHE_DIR) beforehand",
    ),
    RetryRule(
        "saved-plan-stale",
        r"Saved plan is stale",
        attempts=1,
        hint="the unit's state changed after its saved plan was made (another apply ran): "
        "the plan was not applied; plan again (refarch plan-all DIR --out-dir PLANDIR), review "
        "it, then apply the new plans",
    ),
)

DEFAULT_RULES: tuple[RetryRule, ...] = REFARCH_RULES + TERRAGRUNT_RULES + DIAGNOSIS_RULES

# Packer's transient failures (refarch.jobs.amis puts them ahead of the defaults for
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
            hint = next((r.hint for r in rules if r.hint and r.matches(text)), None)
            reason = f"{rule.name}: gave up after {attempt} attempts" if rule.attempts > 1 else rule.name
            return Decision(False, f"{reason}; {hint}" if hint else reason, rule, hint=hint)
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
    attempts = 4              # optional: backoff, delay, max_delay, jitter, remedy, hint
    ```
    (validated when the settings are read: refarch.settings.RetrySettings)
    """
    user = tuple(
        RetryRule(
            name=rule.name or f"user-{index + 1}",
            pattern=rule.pattern,
            attempts=rule.attempts,
            backoff=rule.backoff,
            delay=rule.delay,
            max_delay=rule.max_delay,
            jitter=rule.jitter,
            remedy=rule.remedy,
            origin="user",
            hint=rule.hint,
        )
        for index, rule in enumerate(settings.retry.rules)
    )
    return user + (DEFAULT_RULES if settings.retry.defaults else ())


def lock_timeout_from_settings(settings: Settings) -> str:
    """How long a retried attempt waits for a state lock (`[retry] lock_timeout`)."""
    return settings.retry.lock_timeout


T = TypeVar("T")
# One attempt: its number (1-based) and the remedies earlier retries asked for.
Attempt = Callable[[int, frozenset[str]], tuple[ProcessResult, T]]


@dataclass(frozen=True)
class Attempted(Generic[T]):
    """How the attempts ended: the last one's result and value, and why they stopped."""

    result: ProcessResult
    value: T
    attempts: int
    decision: Decision | None = None  # for a failure: the rule that gave up, or none matched
    stopped: bool = False  # `stop()` said so between two attempts


def attempt_loop(
    attempt: Attempt[T],
    decide: Callable[[ProcessResult, int], Decision],
    *,
    sleep: Callable[[float], None],
    on_retry: Callable[[int, Decision], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Attempted[T]:
    """Call `attempt` until it succeeds, is interrupted, or `decide` (e.g. a rule catalogue
    through decide() or decide_for_unit()) allows no other try.

    Between attempts: `on_retry(attempt, decision)`, then `sleep(delay)`; a remedy a rule
    names (refresh_modules, wait_for_lock) is passed to every later attempt.
    """
    number, remedies = 1, frozenset[str]()
    while True:
        result, value = attempt(number, remedies)
        if result.ok or result.interrupted or stop():
            return Attempted(result, value, number, stopped=not result.ok and stop())
        decision = decide(result, number)
        if not decision.retry:
            return Attempted(result, value, number, decision)
        if on_retry is not None:
            on_retry(number, decision)
        sleep(decision.delay)
        if stop():
            return Attempted(result, value, number, decision, stopped=True)
        if decision.remedy:
            remedies |= {decision.remedy}
        number += 1
