"""Policy checks on plans: rules as data over a plan's `terraform show -json`, and waivers.

Pure: a plan document and rules in, findings out. The built-in rules are data
(`builtin.toml`, the shape of `[[policy.rules]]`); refarch.toml adds rules and waives deny
rules with a reason. The document's values can be secrets: a finding names the rule, the
resource address and the message, never a value.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from refarch.settings import (
    Context,
    PolicyConditionSettings,
    PolicyRuleSettings,
    PolicyWaiverSettings,
    Settings,
    build,
)

BUILTIN = Path(__file__).with_name("builtin.toml")
WORLD = ("0.0.0.0/0", "::/0")

__all__ = ["Finding", "Verdict", "builtin_rules", "check", "judge", "rules_for"]


@dataclass(frozen=True)
class Finding:
    """One resource of a plan that breaks one rule."""

    rule: str
    effect: str  # deny | warn
    address: str
    message: str
    source: str = "refarch"  # refarch | checkov

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        return cls(**{k: str(data.get(k, "")) for k in ("rule", "effect", "address", "message", "source")})


@dataclass(frozen=True)
class Verdict:
    """What apply does with a unit's findings: refuse (denied), let through with the recorded
    reason (waived), or only report (warned)."""

    denied: tuple[Finding, ...] = ()
    waived: tuple[tuple[Finding, str], ...] = ()
    warned: tuple[Finding, ...] = ()

    @property
    def refused(self) -> bool:
        return bool(self.denied)

    def rows(self) -> list[dict[str, str]]:
        """Each finding with what was done with it (denied, waived with its reason, warned),
        as the run report lists them."""
        rows = [{**f.to_json(), "verdict": "denied"} for f in self.denied]
        rows += [{**f.to_json(), "verdict": "waived", "reason": reason} for f, reason in self.waived]
        return rows + [{**f.to_json(), "verdict": "warned"} for f in self.warned]

    def message(self) -> str:
        """Why apply refuses the unit, and what to do."""
        rules = sorted({f.rule for f in self.denied})
        lines = [f"policy: {len(self.denied)} deny finding(s) in the plan: apply refused"]
        lines += [f"  {f.rule}: {f.address}: {f.message}" for f in self.denied]
        lines.append(
            "fix the code, or waive the rule with a reason in refarch.toml: "
            f'[[policy.waivers]] rule = "{rules[0]}" reason = "..."'
        )
        return "\n".join(lines)


@functools.cache
def builtin_rules() -> tuple[PolicyRuleSettings, ...]:
    """refarch's own rules (builtin.toml)."""
    data = tomllib.loads(BUILTIN.read_text(encoding="utf-8"))
    context = Context(BUILTIN, {})
    return tuple(
        build(PolicyRuleSettings, item, context, f"rules[{index}]")
        for index, item in enumerate(data["rules"])
    )


def rules_for(settings: Settings) -> tuple[PolicyRuleSettings, ...]:
    """The rules a repo's plans are checked against: the built-in ones (unless `[policy]
    builtin = false`), then refarch.toml's `[[policy.rules]]`."""
    own = settings.policy.rules
    return (*builtin_rules(), *own) if settings.policy.builtin else tuple(own)


def check(document: Mapping[str, Any], rules: Iterable[PolicyRuleSettings]) -> list[Finding]:
    """Every finding of `rules` in a `terraform show -json PLANFILE` document: each resource
    the plan keeps or creates (not those it destroys), with its planned values."""
    resources = list(_planned(document))
    references = _references(document)
    found: dict[tuple[str, str], Finding] = {}
    for rule in rules:
        kinds = set(rule.types)
        for address, kind, after, unknown in resources:
            if kind not in kinds or (rule.id, address) in found:
                continue
            if rule.unless_referenced_by and _bare(address) in references.get(rule.unless_referenced_by, ()):
                continue
            if _matches(rule, after, unknown):
                found[(rule.id, address)] = Finding(rule.id, rule.effect, address, rule.message or rule.id)
    return sorted(found.values(), key=lambda f: (f.address, f.rule))


def judge(unit: str, findings: Iterable[Finding], waivers: Sequence[PolicyWaiverSettings]) -> Verdict:
    """The unit's deny findings, split into refused and waived (a waiver naming the rule and
    a glob matching the unit); warn findings are only reported."""
    denied: list[Finding] = []
    waived: list[tuple[Finding, str]] = []
    warned: list[Finding] = []
    for finding in findings:
        if finding.effect != "deny":
            warned.append(finding)
            continue
        waiver = next(
            (
                w
                for w in waivers
                if w.rule == finding.rule and any(fnmatch.fnmatchcase(unit, g) for g in w.units)
            ),
            None,
        )
        if waiver is None:
            denied.append(finding)
        else:
            waived.append((finding, waiver.reason))
    return Verdict(tuple(denied), tuple(waived), tuple(warned))


# -- reading the plan --------------------------------------------------------------------------
def _planned(document: Mapping[str, Any]) -> Iterator[tuple[str, str, Any, Any]]:
    """(address, type, planned values, unknown markers) of each managed resource kept or made."""
    for item in document.get("resource_changes") or ():
        if not isinstance(item, Mapping) or item.get("mode", "managed") != "managed":
            continue
        change = item.get("change") if isinstance(item.get("change"), Mapping) else {}
        assert isinstance(change, Mapping)
        if list(change.get("actions") or ()) == ["delete"] or change.get("after") is None:
            continue
        yield str(item.get("address")), str(item.get("type")), change["after"], change.get("after_unknown")


def _bare(address: str) -> str:
    """An address without instance keys: module.a["x"].aws_s3_bucket.b[0] -> module.a.aws_s3_bucket.b."""
    out, depth = [], 0
    for char in address:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _references(document: Mapping[str, Any]) -> dict[str, set[str]]:
    """resource type -> the resource addresses (bare) its configuration refers to."""
    found: dict[str, set[str]] = {}

    def walk(module: Mapping[str, Any], prefix: str) -> None:
        for resource in module.get("resources") or ():
            if not isinstance(resource, Mapping):
                continue
            refs = found.setdefault(str(resource.get("type")), set())
            for ref in _refs_in(resource.get("expressions")):
                parts = ref.split(".")
                if len(parts) >= 2 and not ref.startswith(("var.", "local.", "module.", "data.")):
                    refs.add(prefix + _bare(".".join(parts[:2])))
        for name, call in (module.get("module_calls") or {}).items():
            if isinstance(call, Mapping) and isinstance(call.get("module"), Mapping):
                walk(call["module"], f"{prefix}module.{name}.")

    root = (document.get("configuration") or {}).get("root_module")
    if isinstance(root, Mapping):
        walk(root, "")
    return found


def _refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "references" and isinstance(value, list):
                yield from (str(v) for v in value)
            else:
                yield from _refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs_in(value)


# -- the tests ---------------------------------------------------------------------------------
_UNKNOWN = object()


def _matches(rule: PolicyRuleSettings, after: Any, unknown: Any) -> bool:
    if rule.each is None:
        return all(_holds(c, after, unknown) for c in rule.conditions)
    for name in rule.each.split("|"):
        items = after.get(name) if isinstance(after, Mapping) else None
        marks = unknown.get(name) if isinstance(unknown, Mapping) else None
        for index, item in enumerate(items if isinstance(items, list) else ()):
            mark = marks[index] if isinstance(marks, list) and index < len(marks) else None
            if all(_holds(c, item, mark) for c in rule.conditions):
                return True
    return False


def _leaves(value: Any, unknown: Any, path: str) -> list[Any]:
    """The values at `path` (`a.b`, `a|b` for either), lists flattened; unknown ones as _UNKNOWN."""
    found: list[Any] = []
    for one in path.split("|"):
        parts = [p for p in one.split(".") if p]
        found.extend(_walk(value, unknown, parts))
    return found


def _walk(value: Any, unknown: Any, parts: list[str]) -> list[Any]:
    if unknown is True:
        return [_UNKNOWN]
    if isinstance(value, list):
        marks = unknown if isinstance(unknown, list) else []
        out: list[Any] = []
        for index, item in enumerate(value):
            out.extend(_walk(item, marks[index] if index < len(marks) else None, parts))
        return out
    if not parts:
        return [] if value is None else [value]
    if not isinstance(value, Mapping):
        return []
    head, rest = parts[0], parts[1:]
    mark = unknown.get(head) if isinstance(unknown, Mapping) else None
    if head not in value and mark is not True:
        return []
    return _walk(value.get(head), mark, rest)


def _holds(condition: PolicyConditionSettings, value: Any, unknown: Any) -> bool:
    leaves = _leaves(value, unknown, condition.path)
    known = [v for v in leaves if v is not _UNKNOWN]
    test, wanted = condition.test, condition.value
    if test == "empty":  # not set in the plan (a value known only after apply counts as not set)
        return not any(v not in ({}, [], "", None) for v in known)
    if test == "not_true":  # unset, or known only after apply: not encrypted by the plan
        return True not in known
    if test == "is_false":
        return False in known
    if test in ("equals", "contains"):
        return wanted in known
    if test == "in":
        return any(v in (wanted or ()) for v in known)
    if test == "ports_include":
        return any(_opens_port(v, wanted or ()) for v in known)
    if test == "allows_all_on_all":
        return any(_allows_all(v, principal=wanted == "principal") for v in known)
    return False


def _opens_port(block: Any, ports: Sequence[int]) -> bool:
    if not isinstance(block, Mapping):
        return False
    protocol = str(block.get("protocol", block.get("ip_protocol", "")))
    if protocol in ("-1", "all"):
        return True
    low, high = block.get("from_port"), block.get("to_port")
    if not isinstance(low, int) or not isinstance(high, int):
        return False
    return any(low <= port <= high for port in ports)


def _allows_all(text: Any, *, principal: bool) -> bool:
    """An IAM policy document (JSON text) with an Allow statement on `*` actions and `*`
    resources (principal: with a `*` principal)."""
    try:
        document = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return False
    statements = document.get("Statement") if isinstance(document, Mapping) else None
    if isinstance(statements, Mapping):
        statements = [statements]
    for statement in statements if isinstance(statements, list) else ():
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        if principal:
            who = statement.get("Principal")
            values = who.values() if isinstance(who, Mapping) else [who]
            if any(v == "*" or (isinstance(v, list) and "*" in v) for v in values):
                return True
            continue
        if _star(statement.get("Action")) and _star(statement.get("Resource")):
            return True
    return False


def _star(value: Any) -> bool:
    return value == "*" or (isinstance(value, list) and "*" in value)
