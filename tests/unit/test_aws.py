"""AwsSessions turns botocore's failures into typed errors with a next step."""

import datetime
from types import SimpleNamespace

import pytest

from refarch.aws import AssumedRoleCredentials, AwsSessions, _expired_token_retry, new_session
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


# -- long runs: assumed-role credentials refresh before they expire -----------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.datetime(2026, 1, 1, 9, 0, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)


class FakeSts:
    """AssumeRole: a new key each call, valid one hour from the fake clock's now."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[dict] = []
        self.issued: list[datetime.datetime] = []

    def __call__(self, params):
        self.calls.append(dict(params))
        self.issued.append(self.clock())
        n = len(self.calls)
        return {
            "AccessKeyId": f"ASIAFAKE{n:012d}",
            "SecretAccessKey": f"secret-{n}",
            "SessionToken": f"token-{n}",
            "Expiration": self.clock() + datetime.timedelta(hours=1),
        }


def fake_sessions():
    clock = FakeClock()
    sts = FakeSts(clock)
    base = new_session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    sessions = AwsSessions(
        Settings(endpoint_url="http://127.0.0.1:9"), base_session=base, clock=clock, assume_role=sts
    )
    return sessions, clock, sts


ROLE = "arn:aws:iam::444444444444:role/deploy"


def test_a_three_hour_run_never_hands_out_expired_credentials():
    sessions, clock, sts = fake_sessions()

    def key():
        return sessions.credentials_env("444444444444", role_arn=ROLE)["AWS_ACCESS_KEY_ID"]

    assert key() == "ASIAFAKE000000000001" and len(sts.calls) == 1
    clock.advance(minutes=30)
    assert key() == "ASIAFAKE000000000001"  # still valid for 30 minutes: kept
    clock.advance(minutes=20)  # 10 minutes left: renewed before it expires
    assert key() == "ASIAFAKE000000000002"
    seen = set()
    for _ in range(3 * 6):  # a unit starting every 10 minutes for three hours
        clock.advance(minutes=10)
        env = sessions.credentials_env("444444444444", role_arn=ROLE)
        seen.add(env["AWS_ACCESS_KEY_ID"])
        number = int(env["AWS_ACCESS_KEY_ID"][-12:])
        assert env["AWS_SESSION_TOKEN"] == f"token-{number}"
        # the key handed out was issued at most 50 minutes ago: valid 10 more minutes at least
        assert clock() - sts.issued[number - 1] <= datetime.timedelta(minutes=50)
    assert len(seen) >= 4  # renewed several times, never one key for three hours
    assert all(call["RoleArn"] == ROLE for call in sts.calls)


def test_an_expired_token_error_is_retried_once_with_fresh_credentials():
    sessions, _clock, sts = fake_sessions()
    credentials = sessions.session("444444444444", role_arn=ROLE).get_credentials()
    assert isinstance(credentials, AssumedRoleCredentials)
    handler = _expired_token_retry(credentials)
    refused = (object(), {"Error": {"Code": "ExpiredToken", "Message": "The security token is expired"}})
    assert handler(response=refused, attempts=2) is None  # only the first failure is retried
    assert handler(response=(object(), {"Error": {"Code": "AccessDenied"}}), attempts=1) is None
    assert handler(response=None, attempts=1) is None
    assert len(sts.calls) == 1
    assert handler(response=refused, attempts=1) == 0.0  # retry now ...
    frozen = credentials.get_frozen_credentials()  # ... signed with credentials assumed again
    assert frozen.access_key == "ASIAFAKE000000000002" and len(sts.calls) == 2


def test_clients_of_an_assumed_role_retry_an_expired_token_with_fresh_credentials():
    sessions, _clock, sts = fake_sessions()
    session = sessions.session("444444444444", role_arn=ROLE)
    client = sessions._client_from(session, "s3", "us-east-1")  # what client() returns
    http = SimpleNamespace(status_code=400, headers={}, content=b"")
    refused = (http, {"Error": {"Code": "ExpiredToken"}, "ResponseMetadata": {}})
    answers = client.meta.events.emit(
        "needs-retry.s3.ListBuckets",
        response=refused,
        attempts=1,
        caught_exception=None,
        operation=client.meta.service_model.operation_model("ListBuckets"),
        request_dict={"context": {}},
    )
    assert 0.0 in [answer for _handler, answer in answers]
    assert session.get_credentials().get_frozen_credentials().access_key == "ASIAFAKE000000000002"
    assert len(sts.calls) == 2
