import pytest

from refarch.errors import ConfigError
from refarch.exec.process import ProcessResult
from refarch.exec.retry import (
    DEFAULT_RULES,
    TERRAGRUNT_RETRYABLE_ERRORS,
    TERRAGRUNT_RULES,
    RetryRule,
    decide,
    lock_timeout_from_settings,
    rules_from_settings,
)
from refarch.settings import settings_from_dict


def failed(stderr: str, *, returncode: int = 1, interrupted: bool = False) -> ProcessResult:
    return ProcessResult(("terragrunt", "apply"), "/x", returncode, "", stderr, 0.1, interrupted)


def mid(_: float = 0) -> float:
    return 0.5  # no jitter: 2 * 0.5 - 1 == 0


def test_catalogue_starts_from_terragrunts_thirty_defaults():
    assert len(TERRAGRUNT_RETRYABLE_ERRORS) == 30
    assert all(rule.origin == "terragrunt" and rule.attempts == 3 for rule in TERRAGRUNT_RULES)


@pytest.mark.parametrize(
    "stderr",
    [
        "Error: Failed to load state: read tcp 10.0.0.1:443: i/o timeout",
        "NoSuchBucket: The specified bucket does not exist\n\tstatus code: 404",
        'Error installing provider "aws": net/http: TLS handshake timeout.',
        "Error creating SSM parameter: TooManyUpdates: too many updates",
        "Error: Failed to query available provider packages\n\ncontext deadline exceeded",
    ],
)
def test_terragrunt_transient_errors_are_retried(stderr):
    decision = decide(DEFAULT_RULES, failed(stderr), 1, rand=mid)
    assert decision.retry and decision.rule is not None


def test_unknown_failure_is_never_retried():
    decision = decide(DEFAULT_RULES, failed("Error: Invalid reference to undeclared variable"), 1)
    assert not decision.retry and decision.rule is None


def test_success_and_interrupt_are_never_retried():
    ok = ProcessResult(("t",), "/x", 0, "", "TLS handshake timeout", 0.1)
    assert not decide(DEFAULT_RULES, ok, 1).retry
    assert not decide(DEFAULT_RULES, failed("TLS handshake timeout", interrupted=True), 1).retry


def test_gives_up_after_the_rules_attempts():
    rule = RetryRule("flaky", "flaky", attempts=3, delay=1, jitter=0)
    assert decide([rule], failed("flaky"), 2).retry
    final = decide([rule], failed("flaky"), 3)
    assert not final.retry and final.rule == rule and "gave up" in final.reason


def test_exponential_backoff_is_capped_and_jittered():
    rule = RetryRule("r", "x", attempts=10, delay=5, max_delay=30, jitter=0.2)
    assert [rule.delay_for(n, mid) for n in (1, 2, 3, 4)] == [5, 10, 20, 30]
    assert rule.delay_for(1, lambda: 0.0) == pytest.approx(4.0)
    assert rule.delay_for(1, lambda: 1.0) == pytest.approx(6.0)
    fixed = RetryRule("f", "x", backoff="fixed", delay=5, jitter=0)
    assert fixed.delay_for(3, mid) == 5


def test_deploy_guide_rules_and_their_remedies():
    modules = decide(
        DEFAULT_RULES,
        failed("Error loading modules: module vpc: not found, may need to run 'terraform init'"),
        1,
    )
    assert modules.retry and modules.remedy == "refresh_modules"
    assert not decide(
        DEFAULT_RULES,
        failed("Error loading modules: module vpc: not found, may need to run 'terraform init'"),
        2,
    ).retry
    lock = decide(DEFAULT_RULES, failed("Error: Error acquiring the state lock\nLock Info:"), 1)
    assert lock.retry and lock.remedy == "wait_for_lock"
    alarm = decide(
        DEFAULT_RULES, failed("Error: A separate request to update this alarm is in progress."), 3, rand=mid
    )
    assert alarm.retry and alarm.rule is not None and alarm.rule.name == "alarm-update-in-progress"
    for text in (
        "InvalidClientTokenId: The security token included in the request is invalid",
        "Error: InvalidParameterValue: Invalid IAM Instance Profile name",
        "KMSInvalidStateException: arn:aws:kms:... is pending creation",
    ):
        assert decide(DEFAULT_RULES, failed(text), 1).retry, text


def test_user_rules_come_first_and_are_validated(tmp_path):
    settings = settings_from_dict(
        {
            "retry": {
                "rules": [
                    {"name": "registry-503", "pattern": "registry.*503", "attempts": 5, "backoff": "fixed"},
                    {"name": "tls-once", "pattern": "TLS handshake timeout", "attempts": 1},
                ]
            }
        }
    )
    rules = rules_from_settings(settings)
    assert rules[0].name == "registry-503" and rules[0].origin == "user"
    assert decide(rules, failed("registry.example.com answered 503"), 4).retry
    # the user's rule shadows the built-in one for the same text
    assert not decide(rules, failed("TLS handshake timeout"), 1).retry
    no_defaults = rules_from_settings(settings_from_dict({"retry": {"defaults": False}}))
    assert no_defaults == ()
    for bad in (
        {"rules": [{"name": "x"}]},
        {"rules": [{"pattern": "("}]},
        {"rules": [{"pattern": "x", "remedy": "force_unlock"}]},
        {"bogus": 1},
        {"rules": [{"pattern": "x", "attempts": 0}]},
    ):
        with pytest.raises(ConfigError):
            rules_from_settings(settings_from_dict({"retry": bad}, path=tmp_path / "refarch.toml"))


def test_lock_timeout_setting():
    assert lock_timeout_from_settings(settings_from_dict({})) == "5m"
    ninety = settings_from_dict({"retry": {"lock_timeout": "90s"}})
    assert lock_timeout_from_settings(ninety) == "90s"
    with pytest.raises(ConfigError):
        lock_timeout_from_settings(settings_from_dict({"retry": {"lock_timeout": "soon"}}))


# What Terraform 1.0.3 prints when `init` cannot get a provider (here: from an empty mirror).
PROVIDER_DOWNLOAD_FAILED = """Initializing provider plugins...
- Finding hashicorp/aws versions matching "~> 3.0"...
\u2577
\u2502 Error: Failed to query available provider packages
\u2502
\u2502 Could not retrieve the list of available versions for provider hashicorp/aws: could not
\u2502 connect to registry.terraform.io: Failed to request discovery document: Get
\u2502 "https://registry.terraform.io/.well-known/terraform.json": dial tcp: lookup
\u2502 registry.terraform.io: no such host
\u2575
"""


def test_a_provider_download_failure_is_not_retried_and_gets_a_hint():
    decision = decide(DEFAULT_RULES, failed(PROVIDER_DOWNLOAD_FAILED), 1, rand=mid)
    assert not decision.retry
    assert decision.rule is not None and decision.rule.name == "provider-download"
    assert decision.hint is not None and decision.hint in decision.reason
    assert all(word in decision.hint for word in ("network", "provider mirror", "TF_PLUGIN_CACHE_DIR"))


def test_a_transient_provider_failure_is_retried_first_and_explained_when_it_stays():
    stderr = "Error: Failed to query available provider packages\n\ncontext deadline exceeded"
    assert decide(DEFAULT_RULES, failed(stderr), 1, rand=mid).retry  # Terragrunt's rule first
    final = decide(DEFAULT_RULES, failed(stderr), 3, rand=mid)
    assert not final.retry and final.rule is not None and final.rule.origin == "terragrunt"
    assert final.hint is not None and "gave up after 3 attempts" in final.reason


def test_user_rules_may_carry_a_hint():
    settings = settings_from_dict(
        {
            "retry": {
                "rules": [{"name": "vpn", "pattern": "no route to host", "attempts": 1, "hint": "connect"}]
            }
        }
    )
    decision = decide(rules_from_settings(settings), failed("dial tcp: no route to host"), 1)
    assert (decision.retry, decision.hint, decision.reason) == (False, "connect", "vpn; connect")
