"""Secrets stay masked everywhere with the real Terraform 1.0.3: a 12-line PEM private key
passed as an input, a value read with get_env(), the caller's TF_VAR_*, and outputs Terraform
marks sensitive never appear in the run's stream, unit logs, ledger, report or cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from refarch import load_repo, plan
from refarch.engines.terraform import TerraformEngine, pinned_terraform_binary
from refarch.exec.masking import MASK
from refarch.runner.report import write_report
from refarch.runner.run import run
from tests.integration.test_terraform_engine import Harness, write_live

pytestmark = pytest.mark.integration

UNIT = """
include "root" {
  path = find_in_parent_folders("root.hcl")
}

terraform {
  source = "../../../../modules//secrets"
}

inputs = {
  tls_private_key = <<-EOT
%s
  EOT
  connection      = get_env("APP_CONNECTION")
  pin             = 424242
}
"""


def pem_key() -> str:
    """A real PEM private key of at least 12 lines (RSA 1024 spans 15)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - a test secret
    text = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    lines = text.strip().splitlines()
    assert lines[0] == "-----BEGIN RSA PRIVATE KEY-----" and len(lines) >= 12
    return "\n".join(lines)


@pytest.fixture
def harness(tmp_path: Path, moto_server: Any) -> Harness:
    h = Harness(tmp_path, moto_server.endpoint_url)
    h.make_backend("dev")
    return h


def test_a_pem_input_env_values_and_sensitive_outputs_never_appear(harness: Harness) -> None:
    pem = pem_key()
    connection = "postgres://app:from-the-env-9f3a@db.internal:5432/app"
    caller = "caller-tf-var-secret-77"
    write_live(
        harness.root, {"dev/us-east-1/app": UNIT % "\n".join(f"    {line}" for line in pem.splitlines())}
    )
    env = {**harness.base_env, "APP_CONNECTION": connection, "TF_VAR_caller_secret": caller}
    repo = load_repo(harness.root, env=env, settings=harness.settings)  # with the unit cache
    engine = TerraformEngine(harness.settings, binary=pinned_terraform_binary())
    stream: list[str] = []

    def collect(event: Any) -> None:
        fields = {k: str(v) for k, v in vars(event).items()}
        stream.append(json.dumps({"kind": type(event).__name__, **fields}))

    applied = run(
        plan(repo, "apply"), "apply", harness.settings, engine=engine, base_env=env, on_event=collect
    )
    assert applied.ok, "\n".join(stream[-40:])
    outputs = run(
        plan(repo, "output"), "output", harness.settings, engine=engine, base_env=env, on_event=collect
    )
    assert outputs.ok
    report_path = harness.root.parent / "report.json"
    write_report(outputs, report_path)

    printed = outputs.outputs["dev/us-east-1/app"]
    assert printed["pin"] == MASK and printed["vault_token"] == MASK  # by Terraform's flag
    assert printed["password_length"] == 24 and printed["key_lines"] >= 12  # not by name
    assert (
        printed["key_echo"] == MASK and printed["connection_echo"] == MASK and printed["caller_echo"] == MASK
    )

    # Everything refarch wrote or said: the stream, the unit logs, ledgers, report, cache.
    written = [report_path, *(p for p in (harness.root / ".refarch").rglob("*") if p.is_file())]
    texts = {"stream": "\n".join(stream)}
    texts.update(
        {str(p): p.read_bytes().decode("utf-8", "replace") for p in written if "work" not in p.parts}
    )
    assert any("runs" in name and name.endswith(".log") for name in texts)
    assert "(sensitive value)" in texts["stream"] or MASK in texts["stream"]
    body_lines = [line for line in pem.splitlines() if "-----" not in line]
    for name, text in texts.items():
        for line in body_lines:
            assert line not in text, f"a line of the PEM key is in {name}"
        for secret in (connection, caller, "424242", "sensitive-424242-by-flag-only"):
            assert secret not in text, f"{secret} is in {name}"
