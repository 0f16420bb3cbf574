"""Shared fixtures: the safety guard against real AWS, and a moto server on 127.0.0.1."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from refarch.aws import real_credentials_without_endpoint
from refarch.engines.terraform import pinned_terraform_binary
from refarch.jobs.embedded_aws import MotoServer as EmbeddedMotoServer

# Refuse to run when real-looking credentials are present without an endpoint override:
# nothing in this suite may ever reach a real AWS account.
if real_credentials_without_endpoint(os.environ):
    raise pytest.UsageError(
        "refusing to run the tests: real-looking AWS credentials (AWS_ACCESS_KEY_ID / "
        "AWS_PROFILE) are set and AWS_ENDPOINT_URL is not. Unset them to run the suite."
    )

# Fake credentials for every test; the real ones (if any) are removed above or never used.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    AWS_EC2_METADATA_DISABLED="true",  # never look for instance credentials off this machine
    CHECKPOINT_DISABLE="1",  # Terraform and Packer started by tests never call home
    # refarch's per-user key (it signs the unit cache): one for the test run, not the user's
    XDG_CONFIG_HOME=tempfile.mkdtemp(prefix="refarch-tests-config-"),
)
# The tests run the pinned Terraform 1.0.3 of the [demo] extra, explicitly: refarch prefers a
# terraform on PATH (this machine may have another version), and TG_TF_PATH comes first.
_PINNED = pinned_terraform_binary()
if _PINNED is not None:
    os.environ["TG_TF_PATH"] = _PINNED

# The accounts the multi-account tests reach through STS assume-role. moto's default
# account (the caller's own) is 123456789012.
MOTO_CALLER_ACCOUNT = "123456789012"
ACCOUNTS = {
    "security": "111111111111",
    "shared-services": "222222222222",
    "logs": "333333333333",
    "dev": "444444444444",
    "stage": "555555555555",
    "prod": "666666666666",
}

FIXTURES = Path(__file__).parent / "fixtures"


# The moto server of the tests is the demo's embedded AWS: AWS managed policies loaded and
# moto's gaps for the real AWS provider smoothed (refarch/jobs/emulator_fixes.py).
MotoServer = EmbeddedMotoServer


@pytest.fixture(scope="session")
def moto_server_session() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def moto_server(moto_server_session: MotoServer) -> Iterator[MotoServer]:
    """A clean moto server for one test (state reset before it)."""
    moto_server_session.reset()
    yield moto_server_session


@pytest.fixture
def live_repo() -> Path:
    """The multi-account live repo written for the tests (read-only: copy it to change it)."""
    return FIXTURES / "live"
