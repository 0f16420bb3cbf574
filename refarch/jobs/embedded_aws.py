"""A local AWS for the demo: a moto server on 127.0.0.1 whose state can be saved and loaded."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import pickle
import threading
import urllib.request
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from refarch import files
from refarch.errors import UnreadableFile

__all__ = ["EmbeddedAws", "MotoServer", "moto_version"]

MAGIC = b"refarch-demo-aws\n"
MAX_STATE = 1024 * 1024 * 1024  # far above a demo's state (a few MB)


class MotoServer:
    """A moto server on 127.0.0.1 (a free port) as the real AWS provider needs it: AWS managed
    policies loaded (IAM attachments of `arn:aws:iam::aws:policy/...` fail without them) and
    moto's gaps smoothed by `refarch.jobs.emulator_fixes`. The tests start the same one."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - heavy, only for the demo
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server  # noqa: PLC0415

        from refarch.jobs.emulator_fixes import EmulatorFixes  # noqa: PLC0415

        self.fixes = EmulatorFixes(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            "127.0.0.1", 0, self.fixes, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_port}"
        # moto's documented switch (its config, as MOTO_IAM_LOAD_MANAGED_POLICIES=true does;
        # the server's /moto-api/config does not take it), then a reset so that every
        # account's IAM starts with them. moto keeps its state and its config per process.
        from moto.core.config import default_user_config  # noqa: PLC0415

        default_user_config.setdefault("iam", {})["load_aws_managed_policies"] = True
        self.reset()

    def reset(self) -> None:
        """Every service back to empty (moto's reset)."""
        self.post("/moto-api/reset")

    def post(self, path: str, document: Any = None) -> None:
        data = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(self.endpoint_url + path, data=data, method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - loopback, our server
            pass

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class EmbeddedAws:
    """A moto server on 127.0.0.1 (a free port), started empty; its state can be saved to a
    file and loaded back, so that `refarch demo --keep` runs twice against the same AWS."""

    def __init__(self) -> None:
        self.endpoint_url = ""
        self._server: MotoServer | None = None
        self._quiet: list[tuple[logging.Logger, int]] = []

    def __enter__(self) -> EmbeddedAws:
        for name in ("werkzeug", "moto"):  # the server logs every request on stderr
            logger = logging.getLogger(name)
            self._quiet.append((logger, logger.level))
            logger.setLevel(logging.ERROR)
        self._server = MotoServer()
        self.endpoint_url = self._server.endpoint_url
        return self

    def __exit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.stop()
        for logger, level in self._quiet:
            logger.setLevel(level)

    def save(self, path: Path) -> None:
        """Write every service's state (accounts, regions, resources) to `path`, mode 0600:
        it holds the embedded AWS's secrets (fake ones, but secrets all the same)."""
        from moto.core.base_backend import BackendDict  # noqa: PLC0415

        state: dict[tuple[str, str], dict[str, Any]] = {}
        for backends in list(_in_use(BackendDict)):
            module = importlib.import_module(backends.backend.__module__)
            name = next((n for n, v in vars(module).items() if v is backends), None)
            if name is not None:
                state[(module.__name__, name)] = dict(backends)
        buffer = io.BytesIO()
        _StatePickler(buffer).dump({"moto": moto_version(), "backends": state})
        files.write_atomic(path, files.sign(MAGIC, files.user_key(), buffer.getvalue()), mode=0o600)

    def restore(self, path: Path, note: Callable[[str], None]) -> bool:
        """Load a state `save()` wrote; False (and a note why) when it cannot be used.

        The file is signed with this user's key (refarch.files.user_key): a file `save()`
        did not write is never unpickled (unpickling runs code), the demo starts anew."""
        from moto.core.base_backend import BackendDict  # noqa: PLC0415

        files.check_local_parent(path, create=False)
        files.check_ours(path)
        try:
            payload = files.verified_payload(
                MAGIC, files.user_key(), files.read_bounded(path, limit=MAX_STATE)
            )
        except UnreadableFile as exc:
            note(f"the saved embedded AWS cannot be read ({exc.detail}): starting anew")
            return False
        if payload is None:
            note("the saved embedded AWS is not what the demo wrote (it fails verification): starting anew")
            return False
        try:
            data = pickle.loads(payload)  # noqa: S301 - verified: written by save() as this user
            version = data.get("moto")
            if version != moto_version():
                note(f"the saved embedded AWS is from moto {version}: starting anew")
                return False
            restored = [
                (getattr(importlib.import_module(module_name), name), accounts)
                for (module_name, name), accounts in data["backends"].items()
            ]
        except Exception as exc:
            note(f"the saved embedded AWS cannot be loaded ({type(exc).__name__}): starting anew")
            return False
        for backends, accounts in restored:
            dict.update(backends, accounts)
            if backends not in _in_use(BackendDict):
                _in_use(BackendDict).append(backends)
        return True


def _in_use(backend_dict: type) -> list[Any]:
    """moto's list of the service backends that hold state (what its reset clears)."""
    instances: list[Any] = vars(backend_dict)["_instances"]
    return instances


class _StatePickler(pickle.Pickler):
    """Pickles moto's state. cryptography's keys and certificates (KMS, ACM, the private CA)
    do not pickle: they go as PEM and are loaded back from it."""

    def reducer_override(self, obj: Any) -> Any:
        from cryptography import x509  # noqa: PLC0415
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa  # noqa: PLC0415

        pem = serialization.Encoding.PEM
        if isinstance(obj, x509.Certificate):
            return _load_certificate, (obj.public_bytes(pem),)
        private = (
            rsa.RSAPrivateKey,
            ec.EllipticCurvePrivateKey,
            ed25519.Ed25519PrivateKey,
            ed448.Ed448PrivateKey,  # no DSA: deprecated in cryptography, and moto makes none
        )
        public = (
            rsa.RSAPublicKey,
            ec.EllipticCurvePublicKey,
            ed25519.Ed25519PublicKey,
            ed448.Ed448PublicKey,
        )
        if isinstance(obj, private):
            return _load_private_key, (
                obj.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            )
        if isinstance(obj, public):
            return _load_public_key, (obj.public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),)
        return NotImplemented


def _load_private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return serialization.load_pem_private_key(pem, password=None)


def _load_public_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return serialization.load_pem_public_key(pem)


def _load_certificate(pem: bytes) -> Any:
    from cryptography import x509  # noqa: PLC0415

    return x509.load_pem_x509_certificate(pem)


def moto_version() -> str:
    """The installed moto's version: a saved state only loads into the same one."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version("moto")
    return "unknown"
