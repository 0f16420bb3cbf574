"""The demo's embedded AWS: starts empty, and a saved state loads back into a new server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from refarch.aws import new_session
from refarch.errors import UnsafeLocalState
from refarch.jobs.embedded_aws import EmbeddedAws

pytestmark = pytest.mark.integration


def _client(aws: EmbeddedAws, service: str) -> Any:
    session = new_session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    return session.client(service, endpoint_url=aws.endpoint_url)  # type: ignore[call-overload]


def test_state_is_saved_private_and_loads_into_a_new_server(tmp_path: Path) -> None:
    path = tmp_path / "aws.pickle"
    with EmbeddedAws() as aws:
        s3 = _client(aws, "s3")
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="state", Body=b"{}")
        kms = _client(aws, "kms")  # an RSA key: cryptography objects do not pickle
        key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
        aws.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    with EmbeddedAws() as aws:
        s3 = _client(aws, "s3")
        assert s3.list_buckets().get("Buckets", []) == []  # a new server starts empty
        assert aws.restore(path, note=pytest.fail)
        assert s3.get_object(Bucket="kept", Key="state")["Body"].read() == b"{}"
        kms = _client(aws, "kms")
        key_id = key["KeyMetadata"]["KeyId"]
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeySpec"] == "RSA_2048"
        kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")


def test_a_state_others_may_write_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "aws.pickle"
    with EmbeddedAws() as aws:
        aws.save(path)
        os.chmod(path, 0o666)  # noqa: S103 - the refusal under test
        with pytest.raises(UnsafeLocalState, match="writable by group or others"):
            aws.restore(path, note=pytest.fail)


def test_an_unreadable_state_starts_anew_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "aws.pickle"
    path.write_bytes(b"not a pickle")
    path.chmod(0o600)
    notes: list[str] = []
    with EmbeddedAws() as aws:
        assert not aws.restore(path, note=notes.append)
    assert "starting anew" in notes[0]


@pytest.mark.parametrize(
    "content",
    [
        b"not a pickle",
        b"refarch-demo-aws\n" + b"\x00" * 40,  # the demo's header, a wrong signature
        __import__("pickle").dumps(["a list, not the demo's state"]),
        __import__("pickle").dumps({"moto": "5", "backends": 3}),
    ],
)
def test_a_state_the_demo_did_not_write_is_never_unpickled(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "aws.pickle"
    path.write_bytes(content)
    path.chmod(0o600)
    notes: list[str] = []
    with EmbeddedAws() as aws:
        assert not aws.restore(path, note=notes.append)
    assert notes == [
        "the saved embedded AWS is not what the demo wrote (it fails verification): starting anew"
    ]


def test_a_signed_state_of_the_wrong_shape_starts_anew(tmp_path: Path) -> None:
    import pickle

    from refarch import files
    from refarch.jobs import embedded_aws

    path = tmp_path / "aws.pickle"
    for data in ([1, 2], {"moto": embedded_aws.moto_version(), "backends": {("no.such.module", "x"): {}}}):
        path.write_bytes(files.sign(embedded_aws.MAGIC, files.user_key(), pickle.dumps(data)))
        path.chmod(0o600)
        notes: list[str] = []
        with EmbeddedAws() as aws:
            assert not aws.restore(path, note=notes.append)
        assert "starting anew" in notes[0]
