"""Where secrets live (Secrets Manager or a private folder) and the data-store passwords."""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from refarch.errors import ProvisionError
from refarch.provision import ChangeSet, Result, error_code, tags_list
from refarch.settings import DEFAULT_SECRETS_PREFIX as DEFAULT_PREFIX
from refarch.settings import SecretsSettings, Settings

# No quote, slash, @ or space: RDS, MySQL and PostgreSQL all accept the rest in a password.
PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_.+=!*#%"


class SecretStore(Protocol):
    """A place for key material: `read`/`exists` never change anything; `write` only creates."""

    location: str

    def exists(self, name: str) -> bool: ...

    def read(self, name: str) -> str | None: ...

    def write(self, name: str, value: str, *, description: str) -> str:
        """Store a new secret; return its id (ARN or file path)."""
        ...

    def ref(self, name: str) -> str:
        """How the record names the secret (never its value)."""
        ...


class SecretsManagerStore:
    """Secrets Manager of the owning account; every name gets the configured prefix."""

    def __init__(self, client: Any, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self.location = "secretsmanager"

    def ref(self, name: str) -> str:
        return f"secretsmanager:{self.prefix}{name}"

    def exists(self, name: str) -> bool:
        try:
            self.client.describe_secret(SecretId=self.prefix + name)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True

    def read(self, name: str) -> str | None:
        try:
            value = self.client.get_secret_value(SecretId=self.prefix + name)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return str(value["SecretString"])

    def write(self, name: str, value: str, *, description: str) -> str:
        response = self.client.create_secret(
            Name=self.prefix + name,
            SecretString=value,
            Description=description,
            Tags=tags_list({}),
        )
        return str(response["ARN"])


class DirectoryStore:
    """Files in a private folder (0700), each readable by its owner only (0400)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.location = str(self.root)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ProvisionError(f"secret name {name!r} leaves {self.root}")
        return path

    def ref(self, name: str) -> str:
        return f"file:{self._path(name)}"

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def read(self, name: str) -> str | None:
        path = self._path(name)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def write(self, name: str, value: str, *, description: str) -> str:
        path = self._path(name)
        folder = self.root.resolve()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        for part in path.parent.relative_to(folder).parts:
            folder = folder / part
            folder.mkdir(mode=0o700, exist_ok=True)
            folder.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        return str(path)


def generate_password(length: int) -> str:
    """A random password with at least one lower, upper case letter and digit."""
    while True:
        value = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in value)
            and any(c.isupper() for c in value)
            and any(c.isdigit() for c in value)
        ):
            return value


SecretsConfig = SecretsSettings  # `[secrets]` of refarch.toml, read by refarch.settings


def password_secret(name: str) -> str:
    """The store name of a data-store password."""
    return f"passwords/{name}"


def ensure_password(
    client: Any,
    name: str,
    *,
    account_id: str,
    region: str,
    length: int = 40,
    prefix: str = DEFAULT_PREFIX,
    dry_run: bool = False,
) -> Result:
    """Make a random password exist in Secrets Manager; an existing one is never changed."""
    store = SecretsManagerStore(client, prefix)
    changes = ChangeSet(dry_run)
    secret = password_secret(name)
    ids = {"secret": store.ref(secret)}
    created = not store.exists(secret)
    if created:

        def write() -> None:
            ids["arn"] = store.write(
                secret, generate_password(length), description=f"refarch data-store password {name}"
            )

        changes.make(f"store a new {length}-character password {prefix}{secret}", write)
    return Result(
        "password",
        name,
        changes.status(created),
        account_id,
        region,
        ids,
        tuple(changes.changes),
        (),
        dry_run,
    )


def password_env(
    sessions: Any,
    account_id: str,
    region: str,
    names: Iterable[str],
    *,
    account_name: str | None = None,
) -> dict[str, str]:
    """`TF_VAR_<name>` values for the passwords a unit declares, read from Secrets Manager.

    Side-effect free (reads only). `sessions` is a refarch.aws.AwsSessions; the secret prefix
    comes from its settings. Raises ProvisionError naming the first missing password.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    settings: Settings = sessions.settings
    prefix = settings.secrets.prefix
    store = SecretsManagerStore(
        sessions.client("secretsmanager", account_id, region, account_name=account_name), prefix
    )
    env: dict[str, str] = {}
    for name in wanted:
        value = store.read(password_secret(name))
        if value is None:
            raise ProvisionError(
                f"password {name} is not in Secrets Manager of account {account_id} {region} "
                f"({prefix}{password_secret(name)})",
                hint="run `refarch bootstrap` for this account, or add the name to "
                "[secrets] passwords in refarch.toml",
            )
        env[f"TF_VAR_{name}"] = value
    return env
