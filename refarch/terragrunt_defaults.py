"""Terragrunt's own defaults, as data shared by the config evaluator and the retry engine."""

from __future__ import annotations

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
