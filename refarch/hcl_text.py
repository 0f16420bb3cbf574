"""Python values written as HCL text: escaped strings and literals, on one line or fmt-aligned."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from refarch.errors import ConfigError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def hcl_string(text: str) -> str:
    """`text` as the inside of an HCL quoted string: JSON escapes plus `$${` and `%%{`, so a
    value is never read back as an interpolation or a template directive."""
    return json.dumps(text)[1:-1].replace("${", "$${").replace("%{", "%%{")


def hcl_value(value: Any, indent: int = 0, *, inline: bool = False) -> str:
    """A Python value as an HCL literal. Maps span lines with their `=` aligned as
    `terraform fmt` does (for generated files people read), or stay on one line (`inline`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return f'"{hcl_string(value)}"'
    if isinstance(value, Mapping):
        keys = [k if _IDENTIFIER.match(k) else f'"{hcl_string(k)}"' for k in map(str, value)]
        texts = [hcl_value(v, indent + 2, inline=inline) for v in value.values()]
        if inline:
            return "{" + ", ".join(f"{k} = {t}" for k, t in zip(keys, texts, strict=True)) + "}"
        return _aligned(keys, texts, indent)
    if isinstance(value, Sequence):
        return "[" + ", ".join(hcl_value(item, indent, inline=inline) for item in value) + "]"
    raise ConfigError(f"cannot write a {type(value).__name__} value as HCL")


def _aligned(keys: list[str], texts: list[str], indent: int) -> str:
    if not keys:
        return "{}"
    # Like `terraform fmt`: align `=` within each run of one-line values.
    widths: list[int] = []
    run: list[int] = []
    for index, (key, text) in enumerate(zip(keys, texts, strict=True)):
        if "\n" in text:
            widths.extend([max(run, default=0)] * len(run) + [len(key)])
            run = []
        else:
            run.append(len(key))
        if index == len(keys) - 1:
            widths.extend([max(run, default=0)] * len(run))
    pad = " " * indent
    body = [f"{pad}  {k.ljust(w)} = {t}" for k, t, w in zip(keys, texts, widths, strict=True)]
    return "{\n" + "\n".join(body) + f"\n{pad}}}"
