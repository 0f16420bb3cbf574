"""EC2 key pairs: generated locally, private half kept encrypted in the owning account's store."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from refarch import files
from refarch.errors import ProvisionError
from refarch.provision import ChangeSet, Result, error_code, tags_list
from refarch.provision.secrets import SecretStore
from refarch.settings import KeypairsSettings

KeyPairsConfig = KeypairsSettings  # `[keypairs]` of refarch.toml, read by refarch.settings


@dataclass(frozen=True)
class GeneratedKey:
    """A new key: the private half encrypted with `passphrase` (OpenSSH format)."""

    private_key: str
    passphrase: str
    public_key: str  # the OpenSSH one-line form EC2 imports


def key_store_dir(keys_dir: Path, account: str, *, create: bool = True) -> Path:
    """One account's folder of private keys inside `--keys-dir`: never outside it (an
    account named `../x` is refused), and `--keys-dir` itself made 0700 and checked to be
    this user's alone (UnsafeLocalState otherwise), as it holds private keys."""
    top = Path(keys_dir).resolve()
    folder = top / account
    if folder.resolve().parent != top or account in ("", ".", ".."):
        raise ProvisionError(
            f"account name {account!r} would put its keys outside {top}",
            hint="name the account with letters, digits, '-', '_' and '.' only",
        )
    if create:
        top.mkdir(mode=0o700, parents=True, exist_ok=True)
    if top.exists():
        files.check_ours(top)
    return folder


def generate_key(
    key_type: str = "ed25519", rsa_bits: int = 4096, passphrase: str | None = None
) -> GeneratedKey:
    """A fresh key pair whose private half is protected by a (generated) passphrase."""
    key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    else:
        raise ProvisionError(f"unknown key type {key_type!r}", hint="use ed25519 or rsa")
    passphrase = passphrase or secrets.token_urlsafe(32)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()
    return GeneratedKey(private, passphrase, _public(key))


def _public(key: Any) -> str:
    return str(
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def public_from_private(private_key: str, passphrase: str) -> str:
    """The OpenSSH public line of a stored, encrypted private key."""
    key = serialization.load_ssh_private_key(private_key.encode(), passphrase.encode())
    return _public(key)


def secret_names(name: str) -> tuple[str, str, str]:
    """Store names of a key pair's (private key, passphrase, public key)."""
    return f"keypairs/{name}/private-key", f"keypairs/{name}/passphrase", f"keypairs/{name}/public"


def ensure_key_material(
    store: SecretStore,
    name: str,
    *,
    account_id: str,
    key_type: str = "ed25519",
    rsa_bits: int = 4096,
    dry_run: bool = False,
) -> tuple[str | None, Result]:
    """Make the key exist in the store; return its public line (None in a dry run before it
    exists) and the result. Repairs a half-written entry instead of starting over.

    A dry run decides exactly as the real run does (which of passphrase, private key and
    public key are missing) and lists the same changes; only the writes are skipped.
    """
    private_name, passphrase_name, public_name = secret_names(name)
    ids = {"private_key": store.ref(private_name), "passphrase": store.ref(passphrase_name)}
    changes = ChangeSet(dry_run)
    has_private, has_passphrase = store.exists(private_name), store.exists(passphrase_name)
    has_public = store.exists(public_name)
    if has_private and has_passphrase and has_public:
        return store.read(public_name), Result(
            "key-material", name, "exists", account_id, None, ids, (), (), dry_run
        )
    if has_private and not has_passphrase:
        raise ProvisionError(
            f"key {name} in {store.location} has a private key but no passphrase",
            hint=f"delete {store.ref(private_name)} so refarch makes a new key",
        )
    made: dict[str, str] = {}  # filled by the writes, in order: passphrase, private, public

    def passphrase() -> str:
        if "passphrase" not in made:
            stored = store.read(passphrase_name)
            if stored is None:
                key = generate_key(key_type, rsa_bits)
                made.update(passphrase=key.passphrase, private=key.private_key)
            else:
                made["passphrase"] = stored
        return made["passphrase"]

    def private() -> str:
        if "private" not in made:
            stored = store.read(private_name)
            made["private"] = stored or generate_key(key_type, rsa_bits, passphrase()).private_key
        return made["private"]

    if not has_passphrase:
        changes.make(
            f"store the passphrase of key {name}",
            lambda: store.write(passphrase_name, passphrase(), description=f"passphrase of key pair {name}"),
        )
    if not has_private:
        changes.make(
            f"store the encrypted private key {name}",
            lambda: store.write(private_name, private(), description=f"private key of key pair {name}"),
        )

    def write_public() -> None:
        made["public"] = public_from_private(private(), passphrase())
        store.write(public_name, made["public"], description=f"public key of key pair {name}")

    if has_public:
        made["public"] = store.read(public_name) or ""
    else:
        changes.make(f"store the public key {name}", write_public)
    return made.get("public") or None, Result(
        "key-material",
        name,
        changes.status(not has_private),
        account_id,
        None,
        ids,
        tuple(changes.changes),
        (),
        dry_run,
    )


def ensure_key_pair(
    ec2: Any,
    name: str,
    public_key: str | None,
    *,
    account_id: str,
    region: str,
    dry_run: bool = False,
) -> Result:
    """Import `public_key` as EC2 key pair `name` unless a key pair of that name exists.

    An existing key pair with another public key is left alone (instances may use it) and
    reported as a warning.
    """
    changes = ChangeSet(dry_run)
    try:
        found = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"]
    except Exception as exc:
        if error_code(exc) != "InvalidKeyPair.NotFound":
            raise
        found = []
    warnings: list[str] = []
    ids: dict[str, str] = {}
    if found:
        pair = found[0]
        ids = {"key_pair_id": pair.get("KeyPairId", ""), "fingerprint": pair.get("KeyFingerprint", "")}
        theirs = " ".join(str(pair.get("PublicKey", "")).split()[:2])
        if public_key and theirs and theirs != " ".join(public_key.split()[:2]):
            warnings.append(
                f"key pair {name} in {region} is not the key kept by refarch; "
                "left as is (delete it to let refarch import its own)"
            )
        return Result("key-pair", name, "exists", account_id, region, ids, (), tuple(warnings), dry_run)
    if public_key is None and not dry_run:
        raise ProvisionError(f"no public key for key pair {name}; the key store is incomplete")

    material = (public_key or "").encode()

    def do_import() -> None:
        response = ec2.import_key_pair(
            KeyName=name,
            PublicKeyMaterial=material,
            TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags_list({})}],
        )
        ids.update(key_pair_id=response.get("KeyPairId", ""), fingerprint=response.get("KeyFingerprint", ""))

    changes.make(f"import key pair {name} in {region}", do_import)
    return Result("key-pair", name, "created", account_id, region, ids, tuple(changes.changes), (), dry_run)
