"""Keeps secrets out of logs, the ledger and the report (registered values, secret-named inputs)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
SECRET_NAME = re.compile(r"password|secret|token|private_key", re.IGNORECASE)
# Values shorter than this are not masked: masking "1" or "on" would garble every line
# while protecting nothing a real secret would be.
MIN_SECRET_LENGTH = 4
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
        """Mask `value` (and every string inside it, if it is a list or mapping) from now on."""
        for text in _strings(value):
            if len(text) < MIN_SECRET_LENGTH:
                continue
            with self._lock:
                if text not in self._values:
                    self._values.add(text)
                    self._pattern = None

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
        """A copy of a JSON-like value with secrets masked in every string, and the values
        of secret-named keys replaced outright."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, Mapping):
            return {
                k: (MASK if SECRET_NAME.search(str(k)) and v not in (None, "") else self.mask_data(v))
                for k, v in value.items()
            }
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
    if match.group("value") == MASK or match.group("value").startswith("("):
        return match.group(0)  # already masked, or terraform's "(sensitive value)"
    return f"{match.group('key')}{match.group('quote')}{MASK}"


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
