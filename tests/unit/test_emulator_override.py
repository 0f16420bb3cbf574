"""The S3 path-style override refarch writes for an AWS emulator at a hostname endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from refarch.engines.workdir import EMULATOR_OVERRIDE_FILE, write_emulator_override

PROVIDER = 'provider "aws" {\n  region = "us-east-1"\n  default_tags {\n    tags = { A = "b" }\n  }\n}\n'
ALIASED = 'provider "aws" {\n  alias  = "east"\n  region = "us-east-1"\n}\n'


@pytest.mark.parametrize(
    ("endpoint", "files", "written"),
    [
        ("http://localhost:4566", {"provider.tf": PROVIDER}, True),
        ("http://s3.localhost:5000", {"provider.tf": PROVIDER}, True),
        ("http://127.0.0.1:4566", {"provider.tf": PROVIDER}, False),  # an IP is path-style already
        ("https://bucket.vpce-1a2b.s3.us-east-1.vpce.amazonaws.com", {"provider.tf": PROVIDER}, False),
        (None, {"provider.tf": PROVIDER}, False),
        ("http://localhost:4566", {"main.tf": 'resource "null" "x" {}\n'}, False),  # no base block
        ("http://localhost:4566", {"provider.tf": ALIASED}, False),  # only an aliased one
        ("http://localhost:4566", {"a.tf": ALIASED, "b.tf": PROVIDER}, True),
        ("http://localhost:4566", {"x_override.tf": PROVIDER}, False),  # an override is no base
    ],
)
def test_the_override_is_written_only_for_a_localhost_emulator_with_a_default_aws_provider(
    tmp_path: Path, endpoint: str | None, files: dict[str, str], written: bool
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    path = write_emulator_override(tmp_path, endpoint)
    assert (path is not None) == written == (tmp_path / EMULATOR_OVERRIDE_FILE).is_file()
    if written:
        assert "s3_use_path_style = true" in (tmp_path / EMULATOR_OVERRIDE_FILE).read_text()
