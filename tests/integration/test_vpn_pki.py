"""The OpenVPN PKI on the moto server: made by bootstrap, client profiles, revocation."""

from __future__ import annotations

import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from refarch.aws import AwsSessions
from refarch.cli import cli
from refarch.config import load_repo
from refarch.jobs.bootstrap import bootstrap
from refarch.models import Repo
from refarch.provision.vpn_pki import ensure_vpn_pki, issue_client, revoke_client
from refarch.settings import Settings, load_settings
from tests.conftest import ACCOUNTS, FIXTURES, MotoServer
from tests.integration.test_bootstrap import Calls

pytestmark = pytest.mark.integration

REFARCH_TOML = """
[keypairs]
names = ["openvpn"]

[vpn]
account = "shared-services"
remote = "vpn.acme.example"
"""
SHARED = ACCOUNTS["shared-services"]
ACCOUNTS_RUN = ["security", "shared-services"]


@pytest.fixture
def live(tmp_path: Path, moto_server: MotoServer) -> tuple[Repo, Settings]:
    root = tmp_path / "live"
    shutil.copytree(FIXTURES / "live", root)
    (root / "refarch.toml").write_text(REFARCH_TOML, encoding="utf-8")
    settings = load_settings(root, {"AWS_ENDPOINT_URL": moto_server.endpoint_url})
    return load_repo(root, settings=settings, cache=False), settings


def _secrets(settings: Settings) -> Any:
    return AwsSessions(settings).client("secretsmanager", SHARED, "us-east-1", account_name="shared-services")


def _json(settings: Settings, name: str) -> dict[str, Any]:
    current = _secrets(settings).get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    return dict(json.loads(current["SecretString"]))


def _crl(settings: Settings) -> x509.CertificateRevocationList:
    text = _secrets(settings).get_secret_value(SecretId="refarch/vpn/crl")["SecretString"]
    return x509.load_pem_x509_crl(text.encode())


def _block(profile: str, tag: str) -> str:
    match = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", profile, re.S)
    assert match, tag
    return match.group(1) + "\n"


def test_bootstrap_makes_the_pki_encrypted_and_a_second_run_changes_nothing(
    live: tuple[Repo, Settings],
) -> None:
    repo, settings = live
    dry = bootstrap(repo, settings, accounts=ACCOUNTS_RUN, dry_run=True)
    planned = [c for c in dry.changes if "refarch-vpn" in c or "refarch/vpn/" in c]
    record = bootstrap(repo, settings, accounts=ACCOUNTS_RUN)
    made = [c for c in record.changes if "refarch-vpn" in c or "refarch/vpn/" in c]
    assert made == planned and len(made) == 5  # the key, then the CA, server, clients, CRL

    kms = AwsSessions(settings).client("kms", SHARED, "us-east-1", account_name="shared-services")
    key_arn = kms.describe_key(KeyId="alias/refarch-vpn")["KeyMetadata"]["Arn"]
    secrets = _secrets(settings)
    for part in ("ca", "server", "crl", "clients"):
        assert secrets.describe_secret(SecretId=f"refarch/vpn/{part}")["KmsKeyId"] == key_arn
    # Only the VPN account has it.
    dev = AwsSessions(settings).client("secretsmanager", ACCOUNTS["dev"], "us-east-1", account_name="dev")
    assert not [s for s in dev.list_secrets()["SecretList"] if s["Name"].startswith("refarch/vpn/")]

    server = _json(settings, "refarch/vpn/server")
    ca = x509.load_pem_x509_certificate(server["ca"].encode())
    cert = x509.load_pem_x509_certificate(server["certificate"].encode())
    cert.verify_directly_issued_by(ca)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usage
    key = serialization.load_pem_private_key(server["private_key"].encode(), None)
    assert key.public_key() == cert.public_key()
    assert server["tls_crypt"].count("\n") == 21 and "BEGIN OpenVPN Static key V1" in server["tls_crypt"]
    crl = _crl(settings)
    assert crl.is_signature_valid(ca.public_key()) and len(crl) == 0
    assert record.outputs.get("private_ca") is None  # the VPN CA is its own, not the TLS one

    calls = Calls()
    again = bootstrap(repo, settings, accounts=ACCOUNTS_RUN, sessions=AwsSessions(settings, on_call=calls))
    assert calls.mutating == [] and again.nothing_to_do
    assert {r.status for r in again.results if r.kind in ("kms-key", "vpn-pki")} == {"exists"}


def test_client_profile_verifies_against_the_stored_ca_and_revoke_fills_the_crl(
    live: tuple[Repo, Settings], tmp_path: Path, moto_server: MotoServer
) -> None:
    repo, settings = live
    bootstrap(repo, settings, accounts=ACCOUNTS_RUN)
    endpoint = ["--endpoint-url", moto_server.endpoint_url]
    out = tmp_path / "profiles" / "alice.ovpn"
    out.parent.mkdir()
    result = CliRunner().invoke(cli, ["vpn", "client", str(repo.root), "alice", "--out", str(out), *endpoint])
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" not in result.output
    assert not list(out.parent.glob(".*.tmp"))
    profile = out.read_text()
    assert "remote vpn.acme.example 1194" in profile and "remote-cert-tls server" in profile

    # The profile's certificate is signed by the CA stored in the account, for clients, and
    # its key is the certificate's; its tls-crypt key is the server's.
    stored_ca = x509.load_pem_x509_certificate(_json(settings, "refarch/vpn/ca")["certificate"].encode())
    assert x509.load_pem_x509_certificate(_block(profile, "ca").encode()) == stored_ca
    cert = x509.load_pem_x509_certificate(_block(profile, "cert").encode())
    cert.verify_directly_issued_by(stored_ca)
    assert cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value == "alice"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in usage
    key = serialization.load_pem_private_key(_block(profile, "key").encode(), None)
    assert key.public_key() == cert.public_key()
    assert _block(profile, "tls-crypt") == _json(settings, "refarch/vpn/server")["tls_crypt"]
    assert _json(settings, "refarch/vpn/clients")["alice"]["serial"] == format(cert.serial_number, "x")

    # A second certificate for a name that has one is refused.
    again = CliRunner().invoke(cli, ["vpn", "client", "alice", str(repo.root), "--out", str(out), *endpoint])
    assert again.exit_code == 2 and "revoke it first" in again.output

    result = CliRunner().invoke(cli, ["vpn", "revoke", "alice", str(repo.root), *endpoint])
    assert result.exit_code == 0, result.output
    crl = _crl(settings)
    assert crl.is_signature_valid(stored_ca.public_key())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert len(crl) == 1

    # Re-issued after the revocation: a new serial, and the old one stays revoked.
    result = CliRunner().invoke(cli, ["vpn", "client", "alice", str(repo.root), "--out", str(out), *endpoint])
    assert result.exit_code == 0, result.output
    fresh = x509.load_pem_x509_certificate(_block(out.read_text(), "cert").encode())
    assert fresh.serial_number != cert.serial_number
    assert _crl(settings).get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    unknown = CliRunner().invoke(cli, ["vpn", "revoke", "bob", str(repo.root), *endpoint])
    assert unknown.exit_code == 2 and "known clients: alice" in unknown.output

    # Nothing for bootstrap to do after clients came and went.
    calls = Calls()
    bootstrap(repo, settings, accounts=ACCOUNTS_RUN, sessions=AwsSessions(settings, on_call=calls))
    assert calls.mutating == []


def test_concurrent_issue_and_revoke_lose_no_serial_and_no_revocation(
    live: tuple[Repo, Settings], tmp_path: Path
) -> None:
    """Eight `vpn client` and four `vpn revoke` at once, each with its own AWS session: the
    index holds every serial issued and every revocation, and the last CRL lists them all."""
    repo, settings = live
    sessions = AwsSessions(settings)
    ensure_vpn_pki(
        _secrets(settings),
        sessions.client("kms", SHARED, "us-east-1", "shared-services"),
        settings.vpn,
        account_id=SHARED,
        region="us-east-1",
    )
    doomed = {f"old{i}": issue_client(repo, settings, f"old{i}", tmp_path / f"old{i}.ovpn") for i in range(4)}
    issued: dict[str, str] = {}
    revoked: dict[str, str] = {}

    def issue(name: str) -> None:
        issued[name] = issue_client(
            repo, settings, name, tmp_path / f"{name}.ovpn", sessions=AwsSessions(settings)
        ).serial

    def revoke(name: str) -> None:
        revoked[name] = revoke_client(repo, settings, name, sessions=AwsSessions(settings)).serials[0]

    jobs = [(issue, f"new{i}") for i in range(8)] + [(revoke, name) for name in doomed]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for future in [pool.submit(job, name) for job, name in jobs]:
            future.result()

    index = _json(settings, "refarch/vpn/clients")
    assert {n: index[n]["serial"] for n in issued} == issued  # no lost serial
    assert all(not index[n].get("serial") for n in doomed)  # no revocation undone
    assert {n: index[n]["revoked"][0]["serial"] for n in doomed} == {n: p.serial for n, p in doomed.items()}
    crl = _crl(settings)
    listed = {format(r.serial_number, "x") for r in crl}
    assert listed == {p.serial for p in doomed.values()}
