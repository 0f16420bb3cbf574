"""The OpenVPN PKI material and where it is kept, without AWS."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from refarch.errors import ConfigError, UsageError
from refarch.models import Account, Repo, Unit
from refarch.provision.vpn_pki import (
    VpnConfig,
    locate,
    make_ca,
    make_crl,
    make_leaf,
    make_tls_crypt_key,
    render_profile,
)
from refarch.settings import settings_from_dict

ACCOUNTS = (
    Account("security", "111111111111", 1, ("us-east-1",)),
    Account("shared-services", "222222222222", 2),
)


def test_tls_crypt_key_has_openvpns_static_key_format() -> None:
    text = make_tls_crypt_key()
    body = text.split("-----BEGIN OpenVPN Static key V1-----\n")[1].split("\n-----END")[0].splitlines()
    assert len(body) == 16 and all(re.fullmatch(r"[0-9a-f]{32}", line) for line in body)
    assert make_tls_crypt_key() != text


def test_crl_lists_the_revoked_serials_signed_by_the_ca() -> None:
    ca = make_ca()
    leaf = make_leaf(ca, "alice", server=False)
    when = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC).isoformat()
    crl = x509.load_pem_x509_crl(make_crl(ca, {leaf["serial"]: when}).encode())
    ca_cert = x509.load_pem_x509_certificate(ca["certificate"].encode())
    assert crl.is_signature_valid(ca_cert.public_key())
    revoked = crl.get_revoked_certificate_by_serial_number(int(leaf["serial"], 16))
    assert revoked is not None and revoked.revocation_date_utc.isoformat() == when


def test_profile_holds_every_inline_block() -> None:
    ca = make_ca()
    server = {"ca": ca["certificate"], "tls_crypt": make_tls_crypt_key()}
    text = render_profile(
        server,
        make_leaf(ca, "bob", server=False),
        remote="203.0.113.7",
        port=1194,
        proto="udp",
        server_name="s",
    )
    for tag in ("ca", "cert", "key", "tls-crypt"):
        assert f"<{tag}>\n-" in text or f"<{tag}>\n#" in text
    assert "remote 203.0.113.7 1194" in text and "verify-x509-name s name" in text


def _repo(units: dict[str, Unit], toml: dict[str, object]) -> Repo:
    return Repo(Path("/x"), units, ACCOUNTS, settings_from_dict(toml))


def test_no_openvpn_unit_and_no_vpn_section_means_no_pki() -> None:
    repo = _repo({}, {})
    assert locate(repo, repo.settings) is None


def test_the_openvpn_units_account_and_region_hold_the_pki() -> None:
    unit = Unit("shared-services/eu-west-1/openvpn", "shared-services", "222222222222", "eu-west-1")
    repo = _repo({unit.path: unit}, {})
    where = locate(repo, repo.settings)
    assert where is not None and (where.account.name, where.region) == ("shared-services", "eu-west-1")
    off = _repo({unit.path: unit}, {"vpn": {"enabled": False}})
    assert locate(off, off.settings) is None


def test_vpn_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="kms_key_alias"):
        VpnConfig.from_settings(settings_from_dict({"vpn": {"kms_key_alias": "refarch"}}))
    repo = _repo({}, {"vpn": {"account": "nope"}})
    with pytest.raises(ConfigError, match="'nope' is not in the live repo"):
        locate(repo, repo.settings)


def test_a_name_is_issued_only_with_its_profile_written_and_recorded(tmp_path: Path) -> None:
    import botocore.exceptions
    from moto import mock_aws

    from refarch.aws import AwsSessions
    from refarch.errors import AwsError
    from refarch.provision.vpn_pki import ensure_vpn_pki, issue_client

    class NoPut(AwsSessions):
        def client(self, service: str, *args: Any, **kwargs: Any) -> Any:
            made = super().client(service, *args, **kwargs)

            def deny(model: Any, **_: Any) -> None:
                if model.name == "PutSecretValue":
                    raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied"}}, model.name)

            made.meta.events.register("before-call.*.*", deny)
            return made

    settings = settings_from_dict({"vpn": {"account": "shared-services", "remote": "vpn.example"}})
    repo = Repo(tmp_path, {}, ACCOUNTS, settings)
    with mock_aws():
        sessions = AwsSessions(settings)
        ensure_vpn_pki(
            sessions.client("secretsmanager", "222222222222", "us-east-1", "shared-services"),
            sessions.client("kms", "222222222222", "us-east-1", "shared-services"),
            VpnConfig.from_settings(settings),
            account_id="222222222222",
            region="us-east-1",
        )
        blocked = tmp_path / "a-file"
        blocked.write_text("")
        with pytest.raises(UsageError, match="cannot write the VPN profile"):
            issue_client(repo, settings, "alice", blocked / "alice.ovpn", sessions=sessions)
        out = tmp_path / "alice.ovpn"
        with pytest.raises(AwsError, match="AccessDenied"):
            issue_client(repo, settings, "alice", out, sessions=NoPut(settings))
        assert not out.exists()
        profile = issue_client(repo, settings, "alice", out, sessions=sessions)
        assert out.stat().st_mode & 0o777 == 0o600 and profile.remote == "vpn.example"
