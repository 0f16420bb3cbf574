"""TLS certificates: a local private CA, leaves imported into ACM, public DNS-validated ones."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from refarch.errors import ProvisionError
from refarch.provision import ChangeSet, Result, tags_list
from refarch.provision.secrets import SecretStore
from refarch.settings import DEFAULT_CA_NAME, CertificatesSettings

CLOUDFRONT_REGION = "us-east-1"  # CloudFront only uses certificates from this region
CA_YEARS = 10
LIVE_STATUSES = ("PENDING_VALIDATION", "ISSUED", "INACTIVE")


CertsConfig = CertificatesSettings  # `[certificates]` of refarch.toml, read by refarch.settings


@dataclass(frozen=True)
class CertMaterial:
    """A certificate and its private key in PEM (the key unencrypted: ACM import needs it so)."""

    certificate: str
    private_key: str

    @property
    def serial(self) -> int:
        return x509.load_pem_x509_certificate(self.certificate.encode()).serial_number


def _pem_key(key: Any) -> str:
    return str(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    )


def make_ca(common_name: str = DEFAULT_CA_NAME) -> CertMaterial:
    """A new self-signed CA that may sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertMaterial(cert.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key))


def make_leaf(ca: CertMaterial, domain: str, validity_days: int = 365) -> CertMaterial:
    """A server certificate for `domain` signed by `ca` (RSA 2048: what ACM lists by default)."""
    ca_cert = x509.load_pem_x509_certificate(ca.certificate.encode())
    ca_key = serialization.load_pem_private_key(ca.private_key.encode(), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ProvisionError("the stored CA key is of an unexpected type")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=validity_days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return CertMaterial(cert.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key))


def _store_names(name: str) -> tuple[str, str]:
    slug = name.replace("*", "wildcard")
    return f"certificates/{slug}/certificate", f"certificates/{slug}/private-key"


def ensure_material(
    store: SecretStore,
    name: str,
    make: Callable[[], CertMaterial],
    *,
    account_id: str,
    kind: str,
    dry_run: bool = False,
) -> tuple[CertMaterial | None, Result]:
    """Load a certificate + key from the store, or make and keep one (`make` is not called
    when both are there). Returns None as material in a dry run before it exists."""
    cert_name, key_name = _store_names(name)
    ids = {"certificate": store.ref(cert_name), "private_key": store.ref(key_name)}
    certificate, private_key = store.read(cert_name), store.read(key_name)
    if certificate is not None and private_key is not None:
        return CertMaterial(certificate, private_key), Result(
            kind, name, "exists", account_id, None, ids, (), (), dry_run
        )
    if certificate is not None or private_key is not None:
        raise ProvisionError(
            f"{kind} {name} in {store.location} is half there (certificate or key missing)",
            hint=f"delete {ids['certificate']} and {ids['private_key']} to make a new one",
        )
    changes = ChangeSet(dry_run)
    material: CertMaterial | None = None

    def write() -> None:
        nonlocal material
        material = make()
        store.write(key_name, material.private_key, description=f"private key of {name}")
        store.write(cert_name, material.certificate, description=f"certificate of {name}")

    changes.make(f"generate {kind} {name} and keep it in {store.location}", write)
    return material, Result(kind, name, "created", account_id, None, ids, tuple(changes.changes), (), dry_run)


def acm_certificates(acm: Any) -> list[dict[str, Any]]:
    """Every certificate summary in the region, of every key type (ACM lists RSA_2048 only
    unless asked)."""
    key_types = [
        "RSA_1024",
        "RSA_2048",
        "RSA_3072",
        "RSA_4096",
        "EC_prime256v1",
        "EC_secp384r1",
        "EC_secp521r1",
    ]
    found: list[dict[str, Any]] = []
    for page in acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": key_types}):
        found.extend(page.get("CertificateSummaryList", []))
    return found


def ensure_imported(
    acm: Any,
    material: CertMaterial | None,
    chain: CertMaterial | None,
    domain: str,
    *,
    account_id: str,
    region: str,
    existing: list[dict[str, Any]] | None = None,
    dry_run: bool = False,
) -> Result:
    """Import a private-CA certificate for `domain` into ACM unless one is already imported.

    An imported certificate for the domain that is not ours is left alone, with a warning.
    """
    existing = acm_certificates(acm) if existing is None else existing
    for summary in existing:
        if summary.get("DomainName") == domain and summary.get("Type") == "IMPORTED":
            arn = summary["CertificateArn"]
            warnings: tuple[str, ...] = ()
            if material is not None:
                serial = acm.describe_certificate(CertificateArn=arn)["Certificate"].get("Serial")
                if serial and _serial_number(serial) != material.serial:
                    warnings = (
                        f"ACM certificate {arn} for {domain} is not the one refarch keeps; left as is",
                    )
            return Result(
                "acm-certificate", domain, "exists", account_id, region, {"arn": arn}, (), warnings, dry_run
            )
    changes = ChangeSet(dry_run)
    ids: dict[str, str] = {}

    def do_import() -> None:
        if material is None or chain is None:
            raise ProvisionError(f"no certificate material for {domain}")
        response = acm.import_certificate(
            Certificate=material.certificate.encode(),
            PrivateKey=material.private_key.encode(),
            CertificateChain=chain.certificate.encode(),
            Tags=tags_list({}),
        )
        ids["arn"] = response["CertificateArn"]

    changes.make(f"import the certificate for {domain} into ACM in {region}", do_import)
    return Result(
        "acm-certificate", domain, "created", account_id, region, ids, tuple(changes.changes), (), dry_run
    )


def _serial_number(serial: str) -> int:
    """ACM writes serials as colon-separated hex; moto as a decimal number."""
    if ":" not in serial and serial.isdigit():
        return int(serial)
    return int(serial.replace(":", ""), 16)


def ensure_public_certificate(
    acm: Any,
    route53: Any,
    domain: str,
    zone_id: str,
    *,
    account_id: str,
    region: str,
    existing: list[dict[str, Any]] | None = None,
    dry_run: bool = False,
    sleep: Callable[[float], None] | None = None,
    attempts: int = 20,
) -> Result:
    """Request an ACM certificate with DNS validation and write its validation CNAME.

    ACM fills in the validation record a few seconds after the request: it is polled with
    `sleep` between attempts.
    """
    existing = acm_certificates(acm) if existing is None else existing
    changes = ChangeSet(dry_run)
    arn = next(
        (
            s["CertificateArn"]
            for s in existing
            if s.get("DomainName") == domain
            and s.get("Type") == "AMAZON_ISSUED"
            and s.get("Status") in LIVE_STATUSES
        ),
        None,
    )
    created = arn is None
    if created:
        token = hashlib.sha256(f"{account_id}/{region}/{domain}".encode()).hexdigest()[:32]

        def request() -> None:
            nonlocal arn
            arn = acm.request_certificate(
                DomainName=domain, ValidationMethod="DNS", IdempotencyToken=token, Tags=tags_list({})
            )["CertificateArn"]

        changes.make(f"request a DNS-validated certificate for {domain} in {region}", request)
    if arn is None:  # dry run: the validation record is only known after the request
        changes.make(f"write the validation CNAME for {domain} in zone {zone_id}", lambda: None)
        return Result(
            "acm-certificate",
            domain,
            "created",
            account_id,
            region,
            {"zone_id": zone_id},
            tuple(changes.changes),
            (),
            dry_run,
        )
    record = _validation_record(acm, arn, sleep or _no_sleep, attempts)
    if record is not None and not _has_record(route53, zone_id, record):
        change = {
            "Action": "UPSERT",
            "ResourceRecordSet": {
                "Name": record["Name"],
                "Type": record["Type"],
                "TTL": 300,
                "ResourceRecords": [{"Value": record["Value"]}],
            },
        }
        changes.make(  # the same words as the dry run's, which cannot know the record's name
            f"write the validation CNAME for {domain} in zone {zone_id}",
            lambda: route53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Comment": f"ACM validation of {domain}", "Changes": [change]},
            ),
        )
    warnings = (
        ()
        if record
        else (f"ACM gave no validation record for {domain} yet; run bootstrap again to write it",)
    )
    return Result(
        "acm-certificate",
        domain,
        changes.status(created),
        account_id,
        region,
        {"arn": arn, "zone_id": zone_id},
        tuple(changes.changes),
        warnings,
        dry_run,
    )


def _no_sleep(_: float) -> None:
    return None


def _validation_record(
    acm: Any, arn: str, sleep: Callable[[float], None], attempts: int
) -> dict[str, str] | None:
    for attempt in range(attempts):
        options = acm.describe_certificate(CertificateArn=arn)["Certificate"].get(
            "DomainValidationOptions", []
        )
        for option in options:
            if option.get("ResourceRecord"):
                return dict(option["ResourceRecord"])
        if attempt + 1 < attempts:
            sleep(min(2.0 * (attempt + 1), 10.0))
    return None


def _has_record(route53: Any, zone_id: str, record: dict[str, str]) -> bool:
    found = route53.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=record["Name"], StartRecordType=record["Type"], MaxItems="1"
    ).get("ResourceRecordSets", [])
    if not found:
        return False
    first = found[0]
    values = [r.get("Value") for r in first.get("ResourceRecords", [])]
    return bool(
        first.get("Name", "").rstrip(".").lower() == record["Name"].rstrip(".").lower()
        and first.get("Type") == record["Type"]
        and record["Value"] in values
    )


def ensure_private_ca(
    store: SecretStore,
    *,
    account_id: str,
    common_name: str = DEFAULT_CA_NAME,
    dry_run: bool = False,
) -> tuple[CertMaterial | None, Result]:
    """The architecture's private CA, kept in the CA account's store."""
    return ensure_material(
        store, "ca", lambda: make_ca(common_name), account_id=account_id, kind="private-ca", dry_run=dry_run
    )


def ensure_leaf(
    store: SecretStore,
    ca: CertMaterial | None,
    domain: str,
    *,
    account_id: str,
    validity_days: int = 365,
    dry_run: bool = False,
) -> tuple[CertMaterial | None, Result]:
    """A leaf certificate for `domain`, kept in the owning account's store."""

    def make() -> CertMaterial:
        if ca is None:
            raise ProvisionError(f"cannot sign {domain}: the private CA is missing")
        return make_leaf(ca, domain, validity_days)

    return ensure_material(store, domain, make, account_id=account_id, kind="certificate", dry_run=dry_run)
