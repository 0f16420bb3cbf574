"""Certificates: a local private CA, leaves imported into ACM, public ones validated by DNS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from moto import mock_aws

from refarch.errors import ConfigError
from refarch.provision.certs import (
    CertsConfig,
    ensure_imported,
    ensure_leaf,
    ensure_private_ca,
    ensure_public_certificate,
    make_ca,
    make_leaf,
)
from refarch.provision.secrets import DirectoryStore
from refarch.settings import settings_from_dict

ACCOUNT = "123456789012"


def test_leaf_is_signed_by_the_ca_for_its_name() -> None:
    ca = make_ca("test CA")
    leaf = make_leaf(ca, "app.internal.acme.local", validity_days=30)
    ca_cert = x509.load_pem_x509_certificate(ca.certificate.encode())
    cert = x509.load_pem_x509_certificate(leaf.certificate.encode())
    cert.verify_directly_issued_by(ca_cert)
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["app.internal.acme.local"]
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 30


def test_config_validation() -> None:
    config = CertsConfig.from_settings(
        settings_from_dict(
            {"certificates": {"internal": ["*.internal.acme.local"], "cloudfront": ["cdn.acme.example"]}}
        )
    )
    assert config.private_names == ("*.internal.acme.local", "cdn.acme.example")
    with pytest.raises(ConfigError, match=r"certificates.public\[0\] must be a DNS"):
        CertsConfig.from_settings(settings_from_dict({"certificates": {"public": ["no spaces"]}}))
    with pytest.raises(ConfigError, match=r"unknown key certificates.leafs"):
        CertsConfig.from_settings(settings_from_dict({"certificates": {"leafs": []}}))


def test_ca_and_leaf_kept_in_the_store(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    ca, made = ensure_private_ca(store, account_id=ACCOUNT)
    assert made.status == "created" and ca is not None
    leaf, result = ensure_leaf(store, ca, "*.internal.acme.local", account_id=ACCOUNT)
    assert result.status == "created" and leaf is not None
    assert (
        tmp_path / "certificates" / "wildcard.internal.acme.local" / "private-key"
    ).stat().st_mode & 0o777 == 0o400
    again, found = ensure_private_ca(store, account_id=ACCOUNT)
    assert (again, found.status) == (ca, "exists")


@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield


def test_import_once_per_region(aws: Any) -> None:
    acm = boto3.client("acm", region_name="eu-west-1")
    ca = make_ca()
    leaf = make_leaf(ca, "app.internal.acme.local")
    first = ensure_imported(acm, leaf, ca, "app.internal.acme.local", account_id=ACCOUNT, region="eu-west-1")
    assert first.status == "created" and first.ids["arn"].startswith("arn:aws:acm:eu-west-1")
    second = ensure_imported(acm, leaf, ca, "app.internal.acme.local", account_id=ACCOUNT, region="eu-west-1")
    assert (second.status, second.ids, second.warnings) == ("exists", first.ids, ())
    other = make_leaf(ca, "app.internal.acme.local")
    third = ensure_imported(acm, other, ca, "app.internal.acme.local", account_id=ACCOUNT, region="eu-west-1")
    assert third.status == "exists" and "not the one refarch keeps" in third.warnings[0]


def test_public_certificate_validation_cname_written_once(aws: Any) -> None:
    acm = boto3.client("acm", region_name="us-east-1")
    route53 = boto3.client("route53", region_name="us-east-1")
    zone = route53.create_hosted_zone(Name="acme.example", CallerReference="t")["HostedZone"]
    zone_id = zone["Id"].rsplit("/", 1)[-1]
    dry = ensure_public_certificate(
        acm, route53, "www.acme.example", zone_id, account_id=ACCOUNT, region="us-east-1", dry_run=True
    )
    assert len(dry.changes) == 2 and acm.list_certificates()["CertificateSummaryList"] == []
    first = ensure_public_certificate(
        acm, route53, "www.acme.example", zone_id, account_id=ACCOUNT, region="us-east-1"
    )
    assert first.status == "created" and len(first.changes) == 2
    records = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    assert [r["Type"] for r in records if r["Type"] == "CNAME"] == ["CNAME"]
    second = ensure_public_certificate(
        acm, route53, "www.acme.example", zone_id, account_id=ACCOUNT, region="us-east-1"
    )
    assert (second.status, second.changes) == ("exists", ())
