"""AwsSessions turns botocore's failures into typed errors with a next step."""

import pytest

from refarch.aws import AwsSessions
from refarch.errors import NoCredentials
from refarch.settings import Settings


@pytest.fixture
def no_credentials(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_assuming_a_role_without_credentials_says_what_to_set(no_credentials):
    # Signing fails before a request is made, so the (closed) endpoint is never contacted.
    sessions = AwsSessions(Settings(endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(NoCredentials) as info:
        sessions.session("111111111111", role_arn="arn:aws:iam::111111111111:role/deploy")
    assert info.value.exit_code == 2
    assert "AWS_PROFILE" in str(info.value)


def test_identifying_the_caller_without_credentials_says_what_to_set(no_credentials):
    with pytest.raises(NoCredentials):
        AwsSessions(Settings(endpoint_url="http://127.0.0.1:9")).caller_identity()
