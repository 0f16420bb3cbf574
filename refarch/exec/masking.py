"""Keeps secrets out of logs, the ledger and the report: registered values (every line of a
multi-line one too), secret-named inputs, outputs Terraform marks sensitive, and values taken
from the environment."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
SECRET_NAME = re.compile(r"password|secret|token|private_key", re.IGNORECASE)
# Values shorter than this are not masked: masking "1" or "on" would garble every line
# while protecting nothing a real secret would be.
MIN_SECRET_LENGTH = 4
# Environment variables whose values are never secrets, however they are used in inputs.
PLAIN_ENV = frozenset(
    {"PATH", "HOME", "PWD", "OLDPWD", "USER", "LOGNAME", "SHELL", "LANG", "TERM", "TMPDIR", "HOSTNAME"}
    | {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "TF_IN_AUTOMATION", "TF_INPUT"}
)
# `password = "x"`, `"db_password": "x"`, `TOKEN=x`: a secret-named key assigned in the text.
_ASSIGNED = re.compile(
    r"""(?P<key>["']?[\w.-]*(?:password|secret|token|private_key)[\w.-]*["']?\s*[:=]\s*)"""
    r"""(?P<quote>["']?)(?P<value>[^"'\s,}]+)""",
    re.IGNORECASE,
)


class Masker:
    """Replaces every registered secret value, and any value assigned to a secret-looking
    name, with `***`. Shared by all units of a run; registration is thread-safe."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.register(value)

    def register(self, value: Any) -> None:
        """Mask `value` (and every string inside it, if it is a list or mapping) from now on.
        A multi-line value is masked whole and line by line (tools print it a line at a
        time), and in its JSON-escaped form (as it appears inside a JSON document)."""
        for text in _strings(value):
            forms = {text, json.dumps(text)[1:-1], *(line.strip() for line in text.splitlines())}
            with self._lock:
                for form in forms:
                    if len(form) >= MIN_SECRET_LENGTH and form not in self._values:
                        self._values.add(form)
                        self._pattern = None

    def register_outputs(self, outputs: Mapping[str, Any] | None) -> None:
        """Register the values of the outputs Terraform marks sensitive (`Outputs.sensitive`)."""
        for name in getattr(outputs, "sensitive", ()):
            if outputs is not None and name in outputs:
                self.register(outputs[name])

    def register_env_values(self, inputs: Mapping[str, Any], env: Mapping[str, str]) -> None:
        """Register the value of every environment variable (but the plain ones: PATH, HOME
        ...) that a unit's inputs hold: `get_env()` is how secrets reach a live repo."""
        texts = list(_strings(inputs))
        for name, value in env.items():
            if name in PLAIN_ENV or len(value) < MIN_SECRET_LENGTH:
                continue
            if any(value in text for text in texts):
                self.register(value)

    def mask_outputs(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a unit's outputs: a sensitive one replaced whole by `***` (whatever its
        type), every other masked by value (never by its name: `password_length` is a number)."""
        sensitive: frozenset[str] = getattr(outputs, "sensitive", frozenset())
        return {name: MASK if name in sensitive else self.mask_data(value) for name, value in outputs.items()}

    def register_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Register the values of every input (at any depth) whose name looks secret."""
        for key, value in inputs.items():
            if SECRET_NAME.search(str(key)):
                self.register(value)
            elif isinstance(value, Mapping):
                self.register_inputs(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, Mapping):
                        self.register_inputs(item)

    def mask(self, text: str) -> str:
        """`text` with every secret replaced by `***`."""
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return _ASSIGNED.sub(_mask_assignment, text)

    def mask_data(self, value: Any) -> Any:
        """A copy of a JSON-like value with the registered secrets masked in every string."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, Mapping):
            return {k: self.mask_data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_data(v) for v in value]
        return value

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._values:
                # Longest first, so a secret containing another is masked whole.
                alternatives = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))
            return self._pattern


def _mask_assignment(match: re.Match[str]) -> str:
    value = match.group("value")
    if value == MASK or value.startswith("("):
        return match.group(0)  # already masked, or terraform's "(sensitive value)"
    if not match.group("quote") and (_NUMBER.fullmatch(value) or value in ("true", "false", "null")):
        return match.group(0)  # `password_length = 16`: a number or a flag is not a secret
    return f"{match.group('key')}{match.group('quote')}{MASK}"


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


class Outputs(dict[str, Any]):
    """A unit's outputs (name -> value) with the names Terraform marks `sensitive`."""

    def __init__(self, values: Mapping[str, Any] | None = None, sensitive: Iterable[str] = ()) -> None:
        super().__init__(values or {})
        self.sensitive = frozenset(sensitive)


def _strings(value: Any) -> Iterable[str]:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str | int | float):
        yield str(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from _strings(item)
