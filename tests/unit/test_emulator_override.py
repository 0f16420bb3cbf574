"""The S3 path-style override refarch writes for an AWS emulator at a hostname endpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from refarch.engines.terraform import pinned_terraform_binary
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
        ("http://localhost:4566", {"provider.tf": ALIASED}, True),  # only an aliased one
        ("http://localhost:4566", {"a.tf": ALIASED, "b.tf": PROVIDER}, True),
        ("http://localhost:4566", {"x_override.tf": PROVIDER}, False),  # an override is no base
    ],
)
def test_the_override_is_written_only_for_a_localhost_emulator_with_an_aws_provider(
    tmp_path: Path, endpoint: str | None, files: dict[str, str], written: bool
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    path = write_emulator_override(tmp_path, endpoint)
    assert (path is not None) == written == (tmp_path / EMULATOR_OVERRIDE_FILE).is_file()
    if written:
        assert "s3_use_path_style = true" in (tmp_path / EMULATOR_OVERRIDE_FILE).read_text()


# static-website's unit generates `provider_us_east_1.tf` beside the module's default provider.
US_EAST_1 = 'provider "aws" {\n  alias  = "us_east_1"\n  region = "us-east-1"\n}\n'
JSON_ALIASED = {"provider": {"aws": [{"alias": "west", "region": "us-west-2"}]}}


def test_every_aws_provider_configuration_gets_path_style_default_and_aliases(
    tmp_path: Path,
) -> None:
    (tmp_path / "main.tf").write_text(PROVIDER + 'provider "google" {\n  alias = "g"\n}\n')
    (tmp_path / "provider_us_east_1.tf").write_text(US_EAST_1 + ALIASED)
    (tmp_path / "extra.tf.json").write_text(json.dumps(JSON_ALIASED))
    (tmp_path / "other_override.tf").write_text('provider "aws" {\n  alias = "ghost"\n}\n')
    write_emulator_override(tmp_path, "http://localhost:4566")
    text = (tmp_path / EMULATOR_OVERRIDE_FILE).read_text()
    assert text.count('provider "aws" {') == text.count("s3_use_path_style = true") == 4
    for alias in ("east", "us_east_1", "west"):
        assert f'alias             = "{alias}"' in text
    assert "ghost" not in text and '"g"' not in text  # no base block of its own: no override


TERRAFORM = pinned_terraform_binary() or shutil.which("terraform")


@pytest.mark.skipif(TERRAFORM is None, reason="no terraform binary on this machine")
def test_terraform_accepts_the_override_for_a_unit_with_an_aliased_provider(
    tmp_path: Path,
) -> None:
    """Terraform refuses an override block without its base configuration ("Missing base
    provider configuration for override"); `terraform providers` loads and merges the
    configuration without a provider installed (about 0.1 s)."""
    (tmp_path / "main.tf").write_text(PROVIDER)
    (tmp_path / "provider_us_east_1.tf").write_text(US_EAST_1)
    write_emulator_override(tmp_path, "http://localhost:4566")
    result = subprocess.run(
        [str(TERRAFORM), "providers"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "provider_us_east_1.tf").unlink()  # the proof that Terraform checks the match
    result = subprocess.run(
        [str(TERRAFORM), "providers"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert "Missing base provider configuration" in result.stderr
