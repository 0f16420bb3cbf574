"""The OpenVPN PKI: CA, server certificate, tls-crypt key and CRL, kept encrypted in Secrets Manager.

Generated with `cryptography` (no easy-rsa on the instance), in the VPN account (the account of
the repo's `openvpn` unit, else `[vpn] account`), each secret encrypted with a customer-managed
KMS key (alias `alias/refarch-vpn`). The server reads two secrets, whose names the openvpn
module and the Packer template take as inputs: `<prefix>server` (CA certificate, server
certificate and key, tls-crypt key, as JSON) and `<prefix>crl` (the PEM CRL, re-read by the
server on every change). `<prefix>ca` (CA certificate and key) and `<prefix>clients` (the index
of issued client certificates: name -> serial) stay with refarch. Client keys are never stored:
`issue_client` writes them into the `.ovpn` profile only.

The client index is changed by compare-and-swap, so concurrent `vpn client` / `vpn revoke`
lose no serial and no revocation: the new index is put as a version with a staging label of
its own, then AWSCURRENT is moved to it from the version that was read (Secrets Manager
refuses the move when AWSCURRENT is elsewhere by then: someone else wrote first, so read,
change and try again). The CRL is written from the index, and written again until the index
did not change while it was being made: the last CRL written always lists every revocation.
"""

from __future__ import annotations

import datetime
import json
import random
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import botocore.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from refarch.aws import AwsSessions
from refarch.errors import AwsError, ConfigError, ProvisionError, RefarchError, UsageError
from refarch.files import write_atomic
from refarch.models import Account, Repo
from refarch.provision import IDENTIFIER, ChangeSet, Result, error_code, tags_list
from refarch.provision.certs import make_ca as make_private_ca
from refarch.settings import DEFAULT_VPN_CA_NAME as DEFAULT_CA_NAME
from refarch.settings import VPN_LEAF_DAYS as LEAF_DAYS
from refarch.settings import Settings, VpnSettings

UNIT_FOLDER = "openvpn"  # a unit in a folder of this name means the repo runs a VPN server
CA_DAYS = 3650
TLS_CRYPT_BYTES = 256  # OpenVPN static key V1: 2048 bits, 16 lines of 32 hex digits
PARTS = ("ca", "server", "crl", "clients")
PENDING_STAGE = "refarch-pending"  # the label of an index version written, not yet current
_T = TypeVar("_T")
SWAP_ATTEMPTS = 20  # reads and writes of the client index before giving up under contention


VpnConfig = VpnSettings  # `[vpn]` of refarch.toml, read by refarch.settings


@dataclass(frozen=True)
class VpnLocation:
    """Where the PKI lives: account and region."""

    account: Account
    region: str


def locate(repo: Repo, settings: Settings, config: VpnConfig | None = None) -> VpnLocation | None:
    """The VPN account and region, or None when the repo asks for no VPN."""
    config = config or settings.vpn
    unit = next(
        (
            u
            for u in sorted(repo.units.values(), key=lambda u: u.path)
            if u.path.rsplit("/", 1)[-1] == UNIT_FOLDER
        ),
        None,
    )
    if config.enabled is False or (config.enabled is None and unit is None and config.account is None):
        return None
    name = config.account or (unit.account if unit else "shared-services")
    try:
        account = repo.account(name)
    except KeyError:
        raise ConfigError(
            f"the VPN account {name!r} is not in the live repo",
            path=settings.path or "refarch.toml",
            hint="set [vpn] account to one of: " + ", ".join(a.name for a in repo.accounts),
        ) from None
    region = config.region or (unit.region if unit and unit.region else None) or settings.region
    return VpnLocation(account, region)


# -- generating the material -------------------------------------------------------------------


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_usage(*, sign_certs: bool = False, key_agreement: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not sign_certs,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=sign_certs,
        crl_sign=sign_certs,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(common_name: str = DEFAULT_CA_NAME) -> dict[str, str]:
    """A new self-signed OpenVPN CA, {certificate, private_key} in PEM: the same kind of CA
    as bootstrap's private CA (EC P-256, signs leaf certificates only, ten years)."""
    ca = make_private_ca(common_name)
    return {"certificate": ca.certificate, "private_key": ca.private_key}


def _load_ca(ca: Mapping[str, str]) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(ca["certificate"].encode())
    key = serialization.load_pem_private_key(ca["private_key"].encode(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ProvisionError(
            "the stored VPN CA key is not an EC key", hint="was the CA secret edited by hand?"
        )
    return cert, key


def make_leaf(
    ca: Mapping[str, str], common_name: str, *, server: bool, days: int = LEAF_DAYS
) -> dict[str, str]:
    """A server or client certificate signed by `ca`: {certificate, private_key, serial}.

    The extended key usage (serverAuth / clientAuth) is what `remote-cert-tls` checks.
    """
    ca_cert, ca_key = _load_ca(ca)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key_agreement=server), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return {
        "certificate": _pem_cert(cert),
        "private_key": _pem_key(key),
        "serial": format(cert.serial_number, "x"),
    }


def make_tls_crypt_key() -> str:
    """An OpenVPN static key (V1), as `openvpn --genkey secret` writes it."""
    digits = secrets.token_bytes(TLS_CRYPT_BYTES).hex()
    lines = [digits[i : i + 32] for i in range(0, len(digits), 32)]
    return "\n".join(
        [
            "#",
            "# 2048 bit OpenVPN static key",
            "#",
            "-----BEGIN OpenVPN Static key V1-----",
            *lines,
            "-----END OpenVPN Static key V1-----",
            "",
        ]
    )


def make_crl(ca: Mapping[str, str], revoked: Mapping[str, str]) -> str:
    """A CRL signed by `ca` listing `revoked` (hex serial -> ISO revocation time), in PEM.

    OpenVPN re-reads its `crl-verify` file when it changes; it does not refuse an old CRL, but
    next_update is set to the CA's own end so that other readers do not either.
    """
    ca_cert, ca_key = _load_ca(ca)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - datetime.timedelta(minutes=5))
        .next_update(ca_cert.not_valid_after_utc)
    )
    for serial, when in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(int(serial, 16))
            .revocation_date(datetime.datetime.fromisoformat(when))
            .build()
        )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def revoked_serials(clients: Mapping[str, Any]) -> dict[str, str]:
    """hex serial -> revocation time of every revoked client (past certificates included)."""
    found: dict[str, str] = {}
    for entry in clients.values():
        for cert in entry.get("revoked", []):
            found[cert["serial"]] = cert["revoked_at"]
    return found


# -- the secrets -------------------------------------------------------------------------------


def _describe(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(client.describe_secret(SecretId=name))
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _read_version(client: Any, name: str) -> tuple[str, str] | None:
    """The current value of secret `name` and its version id. AWSCURRENT is asked for by
    name: moto's default read does not follow a label moved by UpdateSecretVersionStage."""
    try:
        found = client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return str(found["SecretString"]), str(found["VersionId"])


def _read(client: Any, name: str) -> str | None:
    found = _read_version(client, name)
    return None if found is None else found[0]


def _read_json(client: Any, name: str) -> dict[str, Any]:
    return _read_json_version(client, name)[0]


def _read_json_version(client: Any, name: str) -> tuple[dict[str, Any], str]:
    found = _read_version(client, name)
    text = None if found is None else found[0]
    if found is None or text is None:
        raise ProvisionError(
            f"the VPN PKI secret {name} does not exist",
            hint="run `refarch bootstrap DIR` first: it creates the VPN PKI",
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ProvisionError(
            f"the VPN PKI secret {name} is not JSON", hint="was it edited by hand?"
        ) from None
    if not isinstance(data, dict):
        raise ProvisionError(f"the VPN PKI secret {name} is not a JSON object")
    return data, found[1]


def _swap(client: Any, name: str, text: str, expected: str) -> str | None:
    """Make `text` the current value of secret `name` if version `expected` still is; the
    new version id, or None when another writer came first."""
    token = str(uuid.uuid4())
    client.put_secret_value(
        SecretId=name, ClientRequestToken=token, SecretString=text, VersionStages=[PENDING_STAGE]
    )
    try:
        client.update_secret_version_stage(
            SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=expected
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "InvalidParameterException":  # AWSCURRENT is on another version now
            return None
        raise
    return token


def update_index(
    client: Any,
    name: str,
    change: Callable[[dict[str, Any]], _T],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """Apply `change` (which edits the index in place, or raises) to the client index in
    secret `name` by compare-and-swap: on a concurrent write, read again and redo it."""
    for attempt in range(SWAP_ATTEMPTS):
        clients, version = _read_json_version(client, name)
        result = change(clients)
        if _swap(client, name, json.dumps(clients, sort_keys=True), version) is not None:
            return result
        sleep(random.uniform(0, 0.05 * (attempt + 1)))  # noqa: S311 - jitter, not a secret
    raise ProvisionError(
        f"the VPN client index {name} kept changing while this command wrote it ({SWAP_ATTEMPTS} tries)",
        hint="another `refarch vpn client` or `vpn revoke` is running; try again",
    )


def publish_crl(client: Any, config: VpnConfig, ca: Mapping[str, str]) -> None:
    """Write the CRL from the client index, again until the index did not change meanwhile:
    whoever writes last has seen every revocation committed before its write."""
    for _ in range(SWAP_ATTEMPTS):
        clients, version = _read_json_version(client, config.secret("clients"))
        crl = make_crl(ca, revoked_serials(clients))
        client.put_secret_value(SecretId=config.secret("crl"), SecretString=crl)
        if _read_json_version(client, config.secret("clients"))[1] == version:
            return
    raise ProvisionError(
        f"the VPN client index kept changing while the CRL {config.secret('crl')} was written",
        hint="run `refarch vpn revoke` again once the other VPN commands have finished",
    )


def ensure_kms_key(kms: Any, alias: str, *, changes: ChangeSet) -> str | None:
    """The ARN of the customer-managed key behind `alias`, made when missing (None in a dry
    run before it exists)."""
    try:
        found = kms.describe_key(KeyId=alias)["KeyMetadata"]
        return str(found["Arn"])
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise
    made: dict[str, str] = {}

    def create() -> None:
        key = kms.create_key(
            Description="refarch: encrypts the OpenVPN PKI in Secrets Manager",
            KeyUsage="ENCRYPT_DECRYPT",
            Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tags_list({})],
        )["KeyMetadata"]
        kms.enable_key_rotation(KeyId=key["KeyId"])
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
        made["arn"] = str(key["Arn"])

    changes.make(f"create KMS key {alias} (rotation on) for the VPN PKI", create)
    return made.get("arn")


def _ensure_secret(
    client: Any,
    name: str,
    kms_key: str | None,
    make: Any,
    *,
    description: str,
    changes: ChangeSet,
) -> str | None:
    """Create secret `name` from `make()` unless it exists; re-encrypt it with `kms_key` when
    it uses another key. Returns its current value (None in a dry run before it exists)."""
    found = _describe(client, name)
    if found is None:
        value: dict[str, str] = {}

        def create() -> None:
            value["text"] = make()
            client.create_secret(
                Name=name,
                SecretString=value["text"],
                Description=description,
                KmsKeyId=kms_key,
                Tags=tags_list({}),
            )

        changes.make(f"generate the {description} and keep it in secret {name} (KMS-encrypted)", create)
        return value.get("text")
    # In a dry run before the key exists, every existing secret would be re-encrypted.
    if (kms_key is None and changes.dry_run) or (
        kms_key and found.get("KmsKeyId") not in (kms_key, kms_key.rsplit("/", 1)[-1])
    ):
        changes.make(
            f"encrypt secret {name} with the VPN KMS key",
            lambda: client.update_secret(SecretId=name, KmsKeyId=kms_key or ""),
        )
    return _read(client, name)


def ensure_vpn_pki(
    secretsmanager: Any,
    kms: Any,
    config: VpnConfig,
    *,
    account_id: str,
    region: str,
    dry_run: bool = False,
) -> list[Result]:
    """Make the OpenVPN PKI exist: the KMS key, then the CA, server, CRL and client index
    secrets. Only what is missing is made (a missing server certificate is signed by the
    stored CA); a second run changes nothing."""
    key_changes = ChangeSet(dry_run)
    key_arn = ensure_kms_key(kms, config.kms_key_alias, changes=key_changes)
    key_result = Result(
        "kms-key",
        config.kms_key_alias,
        key_changes.status(bool(key_changes.changes)),
        account_id,
        region,
        {"arn": key_arn} if key_arn else {},
        tuple(key_changes.changes),
        (),
        dry_run,
    )
    changes = ChangeSet(dry_run)
    ca_text = _ensure_secret(
        secretsmanager,
        config.secret("ca"),
        key_arn,
        lambda: json.dumps(make_ca(config.ca_name)),
        description="OpenVPN CA (certificate and key)",
        changes=changes,
    )
    created = bool(changes.changes)
    ca = json.loads(ca_text) if ca_text else None

    def server() -> str:
        if ca is None:
            raise ProvisionError("cannot sign the VPN server certificate: the CA is missing")
        leaf = make_leaf(ca, config.server_name, server=True, days=CA_DAYS)
        return json.dumps(
            {
                "ca": ca["certificate"],
                "certificate": leaf["certificate"],
                "private_key": leaf["private_key"],
                "tls_crypt": make_tls_crypt_key(),
            }
        )

    _ensure_secret(
        secretsmanager,
        config.secret("server"),
        key_arn,
        server,
        description="OpenVPN server material (CA, certificate, key, tls-crypt key)",
        changes=changes,
    )
    clients_text = _ensure_secret(
        secretsmanager,
        config.secret("clients"),
        key_arn,
        lambda: json.dumps({}),
        description="index of issued OpenVPN client certificates",
        changes=changes,
    )
    clients = json.loads(clients_text) if clients_text else {}

    def crl() -> str:
        if ca is None:
            raise ProvisionError("cannot sign the VPN CRL: the CA is missing")
        return make_crl(ca, revoked_serials(clients))

    _ensure_secret(
        secretsmanager,
        config.secret("crl"),
        key_arn,
        crl,
        description="OpenVPN certificate revocation list",
        changes=changes,
    )
    ids = {part: f"secretsmanager:{config.secret(part)}" for part in PARTS}
    if key_arn:
        ids["kms_key_arn"] = key_arn
    pki = Result(
        "vpn-pki",
        config.prefix.rstrip("/"),
        changes.status(created),
        account_id,
        region,
        ids,
        tuple(changes.changes),
        (),
        dry_run,
    )
    return [key_result, pki]


class AccountRun(Protocol):
    """What bootstrap's per-account run offers a provisioner (refarch.bootstrap._AccountRun)."""

    account: Account
    id: str
    dry_run: bool

    @property
    def run(self) -> Any: ...

    def client(self, service: str, region: str | None = None) -> Any: ...

    def add(self, result: Result) -> None: ...


def provision_vpn_pki(account_run: AccountRun) -> None:
    """Bootstrap's hook: make the VPN PKI when this is the VPN account (see `locate`)."""
    repo, settings = account_run.run.repo, account_run.run.settings
    config = settings.vpn
    where = locate(repo, settings, config)
    if where is None or where.account.name != account_run.account.name:
        return
    for result in ensure_vpn_pki(
        account_run.client("secretsmanager", where.region),
        account_run.client("kms", where.region),
        config,
        account_id=account_run.id,
        region=where.region,
        dry_run=account_run.dry_run,
    ):
        account_run.add(result)


# -- clients -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientProfile:
    """A client certificate issued and its profile written."""

    name: str
    serial: str  # hex
    path: Path  # the .ovpn file (0600)
    remote: str


@dataclass(frozen=True)
class Revocation:
    """A client certificate revoked and the CRL the server reads rewritten."""

    name: str
    serials: tuple[str, ...]  # hex; every certificate the name had that was not revoked yet
    crl_secret: str


def render_profile(
    server: Mapping[str, str],
    client: Mapping[str, str],
    *,
    remote: str,
    port: int,
    proto: str,
    server_name: str,
) -> str:
    """A ready `.ovpn` client profile with the CA, certificate, key and tls-crypt key inline."""
    return "\n".join(
        [
            "# OpenVPN client profile written by `refarch vpn client`; it holds a private key.",
            "client",
            "dev tun",
            f"proto {proto}",
            f"remote {remote} {port}",
            "resolv-retry infinite",
            "nobind",
            "persist-key",
            "persist-tun",
            "remote-cert-tls server",
            f"verify-x509-name {server_name} name",
            "data-ciphers AES-256-GCM:AES-128-GCM",
            "auth SHA256",
            "verb 3",
            "<ca>",
            server["ca"].strip(),
            "</ca>",
            "<cert>",
            client["certificate"].strip(),
            "</cert>",
            "<key>",
            client["private_key"].strip(),
            "</key>",
            "<tls-crypt>",
            server["tls_crypt"].strip(),
            "</tls-crypt>",
            "",
        ]
    )


def _vpn_clients(repo: Repo, settings: Settings, sessions: AwsSessions | None) -> tuple[VpnConfig, Any, str]:
    config = settings.vpn
    where = locate(repo, settings, config)
    if where is None:
        raise UsageError(
            "this repo runs no VPN: it has no `openvpn` unit and refarch.toml no [vpn] account",
            hint="add the openvpn unit, or set [vpn] account in refarch.toml, then `refarch bootstrap`",
        )
    sessions = sessions or AwsSessions(settings)
    account = where.account
    session = sessions.session(account.id, account.name, where.region)
    sessions.check_account(f"the VPN PKI in {account.name}", account.id, session)
    return config, sessions.client("secretsmanager", account.id, where.region, account.name), where.region


def issue_client(
    repo: Repo,
    settings: Settings,
    name: str,
    out: Path | None = None,
    *,
    remote: str | None = None,
    sessions: AwsSessions | None = None,
) -> ClientProfile:
    """Sign a client certificate for `name` with the stored CA, add it to the client index,
    and write `<name>.ovpn` (or `out`) with mode 0600 in one atomic rename."""
    if not IDENTIFIER.match(name):
        raise UsageError(f"client name {name!r} is not a plain name", hint="use letters, digits, - and _")
    config, client, _ = _vpn_clients(repo, settings, sessions)
    host = remote or config.remote
    if not host:
        raise UsageError(
            "no VPN server address for the profile",
            hint="give --remote HOST (the openvpn unit's public_ip output), or set [vpn] remote",
        )
    try:
        ca = _read_json(client, config.secret("ca"))
        server = _read_json(client, config.secret("server"))
        _not_issued(name, _read_json(client, config.secret("clients")))
        leaf = make_leaf(ca, name, server=False, days=config.client_days)
        path = Path(out) if out else Path.cwd() / f"{name}.ovpn"
        text = render_profile(
            server, leaf, remote=host, port=config.port, proto=config.proto, server_name=config.server_name
        )
        # The profile first: a name is only recorded as issued once its key is on disk.
        try:
            write_atomic(path, text, mode=0o600)
        except OSError as exc:
            raise UsageError(
                f"cannot write the VPN profile {path}: {exc.strerror or exc}",
                hint="choose another --out; nothing was issued",
            ) from None
        issued = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")

        def record(clients: dict[str, Any]) -> None:
            entry = _not_issued(name, clients)  # again: another `vpn client` may have come first
            clients[name] = {**entry, "serial": leaf["serial"], "issued_at": issued}

        try:
            update_index(client, config.secret("clients"), record)
        except (botocore.exceptions.ClientError, RefarchError):
            _remove_if_ours(path, text)  # never a profile whose serial revoke cannot find
            raise
    except botocore.exceptions.ClientError as exc:
        raise AwsError(f"could not issue VPN client {name}: {exc}") from None
    return ClientProfile(name, leaf["serial"], path, host)


def _not_issued(name: str, clients: Mapping[str, Any]) -> dict[str, Any]:
    """`name`'s index entry, when it holds no valid certificate (else a UsageError)."""
    entry = dict(clients.get(name, {}))
    if entry.get("serial"):
        raise UsageError(
            f"VPN client {name} already has a valid certificate (serial {entry['serial']})",
            hint=f"revoke it first (`refarch vpn revoke DIR {name}`), or choose another name",
        )
    return entry


def _remove_if_ours(path: Path, text: str) -> None:
    """Delete the profile this command wrote, unless another command has replaced it."""
    try:
        if path.read_text(encoding="utf-8") == text:
            path.unlink()
    except OSError:
        pass


def revoke_client(
    repo: Repo, settings: Settings, name: str, *, sessions: AwsSessions | None = None
) -> Revocation:
    """Revoke `name`'s certificate: mark it in the client index and rewrite the CRL secret
    (the server's timer copies it to its `crl-verify` file)."""
    config, client, _ = _vpn_clients(repo, settings, sessions)
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")

    def mark(clients: dict[str, Any]) -> str:
        entry = clients.get(name)
        if not entry or not entry.get("serial"):
            raise UsageError(
                f"VPN client {name} has no valid certificate to revoke",
                hint="known clients: "
                + (", ".join(sorted(c for c in clients if clients[c].get("serial"))) or "none"),
            )
        serial = str(entry["serial"])
        clients[name] = {
            "revoked": [*entry.get("revoked", []), {"serial": serial, "revoked_at": when}],
        }
        return serial

    try:
        ca = _read_json(client, config.secret("ca"))
        serial = update_index(client, config.secret("clients"), mark)
        publish_crl(client, config, ca)
    except botocore.exceptions.ClientError as exc:
        raise AwsError(f"could not revoke VPN client {name}: {exc}") from None
    return Revocation(name, (serial,), config.secret("crl"))
