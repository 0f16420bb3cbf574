"""Values of evaluated HCL: plain Python data plus `Unknown`, a value only known after apply."""

from __future__ import annotations

from typing import Any


class Unknown:
    """A value refarch cannot know while reading config (dependency outputs without mocks,
    run_cmd, AWS identity). Operations on it give Unknown, like Terraform's unknown values."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Unknown({self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unknown) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(("unknown", self.reason))


UNKNOWN_PREFIX = "(known after apply: "


def to_plain(value: Any) -> Any:
    """JSON-ready data: Unknown becomes the string "(known after apply: <what>)"."""
    if isinstance(value, Unknown):
        return f"{UNKNOWN_PREFIX}{value.reason})"
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def contains_unknown(value: Any) -> bool:
    """True if any part of `value` is Unknown."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


def as_bool(value: Any) -> bool:
    """A bool attribute as HCL converts it: true, or the string "true"."""
    return value is True or value == "true"


def type_name(value: Any) -> str:
    """HCL's name for a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "tuple"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def deep_merge(parent: Any, child: Any) -> Any:
    """Terragrunt's deep merge: maps merged recursively, lists concatenated (mergo's
    WithAppendSlice), anything else: the child wins."""
    if isinstance(parent, dict) and isinstance(child, dict):
        result = dict(parent)
        for key, value in child.items():
            result[key] = deep_merge(result[key], value) if key in result else value
        return result
    if isinstance(parent, list) and isinstance(child, list):
        return parent + child
    return child
