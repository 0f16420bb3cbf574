"""The suite must refuse to run when it could reach a real AWS account."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from refarch.aws import real_credentials_without_endpoint

REPO = Path(__file__).resolve().parents[2]
REAL_LOOKING = "AKIA" + "Q" * 16


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({"AWS_ACCESS_KEY_ID": REAL_LOOKING}, True),
        ({"AWS_PROFILE": "prod-admin"}, True),
        ({"AWS_ACCESS_KEY_ID": REAL_LOOKING, "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}, False),
        ({"AWS_ACCESS_KEY_ID": "testing"}, False),
        ({}, False),
    ],
)
def test_real_credentials_without_endpoint(env, refused):
    assert real_credentials_without_endpoint(env) is refused


def test_pytest_refuses_to_start_with_real_looking_credentials():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ACCESS_KEY_ID"] = REAL_LOOKING
    env["AWS_SECRET_ACCESS_KEY"] = "x" * 40
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit/test_hcl.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "refusing to run the tests" in result.stdout + result.stderr
