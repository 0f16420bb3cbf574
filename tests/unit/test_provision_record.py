"""The bootstrap record (atomic, private JSON) and bootstrap's config validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from refarch.errors import ConfigError
from refarch.jobs.bootstrap import BootstrapConfig
from refarch.provision import Result
from refarch.provision.record import AccountRecord, BootstrapRecord, read_record, write_record
from refarch.settings import settings_from_dict


def test_round_trip_private_and_atomic(tmp_path: Path) -> None:
    record = BootstrapRecord(status="done", ran=["dev"])
    record.accounts["dev"] = AccountRecord(
        "dev",
        "444444444444",
        3,
        status="done",
        results=[
            Result(
                "s3-bucket",
                "b",
                "created",
                "444444444444",
                "us-east-1",
                {"arn": "arn:b"},
                ("create bucket b in us-east-1",),
            )
        ],
    )
    path = write_record(tmp_path / ".refarch" / "bootstrap.json", record)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["bootstrap.json"]  # no temp file left
    loaded = read_record(path)
    assert loaded == record
    assert loaded.changes == ["dev/us-east-1: create bucket b in us-east-1"]
    assert not loaded.nothing_to_do


def test_missing_and_unreadable_records(tmp_path: Path) -> None:
    assert read_record(tmp_path / "none.json") is None
    bad = tmp_path / "bootstrap.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="bootstrap record is unreadable"):
        read_record(bad)


def test_every_section_is_validated_up_front() -> None:
    config = BootstrapConfig.from_settings(settings_from_dict({}))
    assert config.parallelism == 4 and config.keypairs.names == ()  # none unless the repo names some
    for data, key in (
        ({"bootstrap": {"parallelism": 0}}, r"bootstrap.parallelism"),
        ({"secrets": {"passwords": "db"}}, r"secrets.passwords"),
        ({"dns": {"zones": []}}, r"unknown key dns.zones"),
    ):
        with pytest.raises(ConfigError, match=r"refarch.toml: " + key):
            BootstrapConfig.from_settings(settings_from_dict(data))
