"""Terraform and Terragrunt built-in functions, as plain Python over evaluated values.

Pure functions take a list of argument values. Terragrunt's context functions (paths,
includes, env, AWS identity) take the evaluation scope first; see `Scope` in evaluate.py.
A function raises FunctionError; the evaluator adds the file, line and function name.
"""

from __future__ import annotations

import base64
import csv
import datetime
import functools
import gzip
import hashlib
import io
import ipaddress
import json
import math
import platform
import posixpath
import re
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from refarch.config.values import Unknown, contains_unknown, deep_merge, type_name
from refarch.patterns import compile_pattern


class FunctionError(Exception):
    """A function was called with bad arguments; the message says what was wrong."""


def _arity(args: list[Any], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not low <= len(args) <= high:
        want = str(low) if low == high else f"{low} to {high}"
        raise FunctionError(f"takes {want} argument(s), got {len(args)}")


def _str(value: Any, what: str = "argument") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _num_str(value)
    if isinstance(value, str):
        return value
    raise FunctionError(f"{what} must be a string, got {type_name(value)}")


def _num_str(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _num(value: Any) -> float:
    if isinstance(value, bool):
        raise FunctionError("expected a number, got bool")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value) if re.fullmatch(r"-?\d+", value) else float(value)
        except ValueError:
            pass
    raise FunctionError(f"expected a number, got {type_name(value)} {value!r}")


def _list(value: Any, what: str = "argument") -> list[Any]:
    if isinstance(value, list):
        return value
    raise FunctionError(f"{what} must be a list, got {type_name(value)}")


def _map(value: Any, what: str = "argument") -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value is None:
        return {}
    raise FunctionError(f"{what} must be a map/object, got {type_name(value)}")


# -- strings ---------------------------------------------------------------------------------
def f_format(args: list[Any]) -> str:
    if not args:
        raise FunctionError("needs a format string")
    spec, values = _str(args[0]), list(args[1:])
    out: list[str] = []
    index = 0
    pattern = re.compile(r"%(?:\[(\d+)\])?([-+ #0]*)(\d*)(?:\.(\d+))?([a-zA-Z%])")
    pos = 0
    for match in pattern.finditer(spec):
        out.append(spec[pos : match.start()])
        pos = match.end()
        explicit, flags, width, precision, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if explicit:
            index = int(explicit) - 1
        if index >= len(values):
            raise FunctionError(f"not enough arguments for {spec!r}")
        value = values[index]
        index += 1
        out.append(_format_one(value, verb, flags, width, precision))
    out.append(spec[pos:])
    return "".join(out)


def _format_one(value: Any, verb: str, flags: str, width: str, precision: str | None) -> str:
    if verb == "v":
        text = json.dumps(value) if isinstance(value, list | dict) else _str(value)
    elif verb == "s":
        text = _str(value)
    elif verb == "q":
        text = json.dumps(_str(value))
    elif verb == "d":
        text = str(int(_num(value)))
    elif verb in "fFeEgG":
        prec = int(precision) if precision else 6
        text = f"{_num(value):.{prec}{verb}}"
    elif verb == "t":
        text = "true" if value else "false"
    elif verb in "xX":
        text = format(int(_num(value)), verb)
    elif verb == "b":
        text = format(int(_num(value)), "b")
    elif verb == "o":
        text = format(int(_num(value)), "o")
    else:
        raise FunctionError(f"unsupported format verb %{verb}")
    if width:
        fill = "0" if "0" in flags and "-" not in flags else " "
        text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width), fill)
    return text


def f_formatlist(args: list[Any]) -> list[str]:
    lists = [a for a in args[1:] if isinstance(a, list)]
    length = len(lists[0]) if lists else 1
    return [
        f_format([args[0], *[a[i] if isinstance(a, list) else a for a in args[1:]]]) for i in range(length)
    ]


def f_replace(args: list[Any]) -> str:
    _arity(args, 3)
    text, search, repl = (_str(a) for a in args)
    if len(search) > 1 and search.startswith("/") and search.endswith("/"):
        return compile_pattern(search[1:-1]).sub(lambda m: _go_expand(repl, m), text)  # type: ignore[no-any-return]
    return text.replace(search, repl)


_GO_TEMPLATE = re.compile(r"\$(?:\$|\{(\w+)\}|(\w+))")


def _go_expand(template: str, match: Any) -> str:
    """Go's Regexp.Expand, as Terraform's replace() uses: $1, ${1}, $name, ${name}, $$;
    a name is the longest run of letters, digits and _, and an unknown group is empty."""

    def one(ref: re.Match[str]) -> str:
        name = ref.group(1) or ref.group(2)
        if name is None:
            return "$"
        try:
            group = match.group(int(name)) if name.isdigit() else match.group(name)
        except (IndexError, KeyError):
            return ""
        return group or ""

    return _GO_TEMPLATE.sub(one, template)


def f_split(args: list[Any]) -> list[str]:
    _arity(args, 2)
    sep, text = _str(args[0]), _str(args[1])
    return [""] if text == "" else text.split(sep) if sep else list(text)


def f_join(args: list[Any]) -> str:
    _arity(args, 2, None)
    sep = _str(args[0])
    items: list[Any] = []
    for value in args[1:]:
        items.extend(_list(value))
    return sep.join(_str(i, "list element") for i in items)


def f_substr(args: list[Any]) -> str:
    _arity(args, 3)
    text = _str(args[0])
    offset, length = int(_num(args[1])), int(_num(args[2]))
    if offset < 0:
        offset += len(text)
    return text[offset:] if length < 0 else text[offset : offset + length]


def f_trim(args: list[Any]) -> str:
    _arity(args, 2)
    return _str(args[0]).strip(_str(args[1]))


def f_trimprefix(args: list[Any]) -> str:
    _arity(args, 2)
    return _str(args[0]).removeprefix(_str(args[1]))


def f_trimsuffix(args: list[Any]) -> str:
    _arity(args, 2)
    return _str(args[0]).removesuffix(_str(args[1]))


def f_regex(args: list[Any]) -> Any:
    _arity(args, 2)
    match = compile_pattern(_str(args[0])).search(_str(args[1]))
    if match is None:
        raise FunctionError("pattern did not match")
    return _regex_result(match)


def _regex_result(match: Any) -> Any:
    if match.re.groupindex:
        return dict(match.groupdict())
    if match.re.groups:
        return list(match.groups())
    return match.group(0)


def f_regexall(args: list[Any]) -> list[Any]:
    _arity(args, 2)
    return [_regex_result(m) for m in compile_pattern(_str(args[0])).finditer(_str(args[1]))]


def f_indent(args: list[Any]) -> str:
    _arity(args, 2)
    pad = " " * int(_num(args[0]))
    return _str(args[1]).replace("\n", "\n" + pad)


# -- collections -----------------------------------------------------------------------------
def f_merge(args: list[Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for value in args:
        result.update(_map(value))
    return result


def f_concat(args: list[Any]) -> list[Any]:
    result: list[Any] = []
    for value in args:
        result.extend(_list(value))
    return result


def f_lookup(args: list[Any]) -> Any:
    _arity(args, 2, 3)
    mapping, key = _map(args[0]), _str(args[1])
    if key in mapping:
        return mapping[key]
    if len(args) == 3:
        return args[2]
    raise FunctionError(f"key {key!r} not found and no default given")


def f_element(args: list[Any]) -> Any:
    _arity(args, 2)
    items = _list(args[0])
    if not items:
        raise FunctionError("cannot use element() on an empty list")
    return items[int(_num(args[1])) % len(items)]


def f_flatten(args: list[Any]) -> list[Any]:
    _arity(args, 1)
    out: list[Any] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            walk(item) if isinstance(item, list) else out.append(item)

    walk(_list(args[0]))
    return out


def f_distinct(args: list[Any]) -> list[Any]:
    _arity(args, 1)
    out: list[Any] = []
    for item in _list(args[0]):
        if item not in out:
            out.append(item)
    return out


def f_length(args: list[Any]) -> int:
    _arity(args, 1)
    value = args[0]
    if isinstance(value, str | list | dict):
        return len(value)
    raise FunctionError(f"cannot take the length of {type_name(value)}")


def f_keys(args: list[Any]) -> list[str]:
    _arity(args, 1)
    return sorted(_map(args[0]))


def f_values(args: list[Any]) -> list[Any]:
    _arity(args, 1)
    mapping = _map(args[0])
    return [mapping[k] for k in sorted(mapping)]


def f_slice(args: list[Any]) -> list[Any]:
    _arity(args, 3)
    return _list(args[0])[int(_num(args[1])) : int(_num(args[2]))]


def f_zipmap(args: list[Any]) -> dict[str, Any]:
    _arity(args, 2)
    return dict(zip((_str(k) for k in _list(args[0])), _list(args[1]), strict=False))


def f_coalesce(args: list[Any]) -> Any:
    for value in args:
        if value is not None and value != "":
            return value
    raise FunctionError("no non-null, non-empty argument")


def f_coalescelist(args: list[Any]) -> Any:
    for value in args:
        if _list(value):
            return value
    raise FunctionError("no non-empty list argument")


def f_one(args: list[Any]) -> Any:
    _arity(args, 1)
    items = _list(args[0])
    if len(items) > 1:
        raise FunctionError("list has more than one element")
    return items[0] if items else None


def f_range(args: list[Any]) -> list[Any]:
    _arity(args, 1, 3)
    nums = [_num(a) for a in args]
    start, stop, step = (
        (0, nums[0], 1) if len(nums) == 1 else (nums[0], nums[1], 1) if len(nums) == 2 else tuple(nums)
    )
    if step == 0:
        raise FunctionError("step must not be zero")
    out = []
    value = start
    while (step > 0 and value < stop) or (step < 0 and value > stop):
        out.append(value)
        value += step
        if len(out) > 1024:
            raise FunctionError("range() would produce more than 1024 elements")
    return out


def f_sort(args: list[Any]) -> list[str]:
    _arity(args, 1)
    return sorted(_str(v) for v in _list(args[0]))


def f_setunion(args: list[Any]) -> list[Any]:
    return f_distinct([f_concat(args)])


def f_contains(args: list[Any]) -> bool:
    _arity(args, 2)
    return args[1] in _list(args[0])


def f_index(args: list[Any]) -> int:
    _arity(args, 2)
    items = _list(args[0])
    if args[1] not in items:
        raise FunctionError("value not in list")
    return items.index(args[1])


def f_tobool(args: list[Any]) -> bool | None:
    _arity(args, 1)
    value = args[0]
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise FunctionError(f"cannot convert {value!r} to bool")


def f_tonumber(args: list[Any]) -> Any:
    _arity(args, 1)
    return None if args[0] is None else _num(args[0])


def f_tostring(args: list[Any]) -> str | None:
    _arity(args, 1)
    return None if args[0] is None else _str(args[0])


def f_tomap(args: list[Any]) -> dict[str, Any]:
    _arity(args, 1)
    return dict(_map(args[0]))


def f_tolist(args: list[Any]) -> list[Any]:
    _arity(args, 1)
    return list(_list(args[0]))


def f_cidrsubnet(args: list[Any]) -> str:
    _arity(args, 3)
    network = ipaddress.ip_network(_str(args[0]), strict=False)
    newbits, num = int(_num(args[1])), int(_num(args[2]))
    prefix = network.prefixlen + newbits
    if newbits < 0 or prefix > network.max_prefixlen or not 0 <= num < 2**newbits:
        raise FunctionError(f"prefix extension of {newbits} does not accommodate subnet {num}")
    address = int(network.network_address) + (num << (network.max_prefixlen - prefix))
    return f"{ipaddress.ip_address(address)}/{prefix}"


def f_cidrhost(args: list[Any]) -> str:
    _arity(args, 2)
    network = ipaddress.ip_network(_str(args[0]), strict=False)
    num = int(_num(args[1]))
    return str(network[num])


# Bounds of jsondecode / yamldecode / csvdecode: the text, the nesting of lists and maps, and
# the values a YAML document holds once its aliases are expanded (a 500-byte "billion laughs"
# document expands to 10^9 values, and every later walk over the value would take forever).
MAX_DECODE_BYTES = 8 << 20
MAX_DECODE_DEPTH = 128
MAX_DECODE_VALUES = 1_000_000


def _decode_input(args: list[Any]) -> str:
    _arity(args, 1)
    text = _str(args[0])
    if len(text) > MAX_DECODE_BYTES:
        raise FunctionError(
            f"the text is {len(text)} characters long; at most {MAX_DECODE_BYTES} are decoded"
        )
    return text


def _too_deep() -> FunctionError:
    return FunctionError(f"lists and maps nested more than {MAX_DECODE_DEPTH} deep")


def _check_shape(root: Any, children: Callable[[Any], list[Any]], aliases: str = "") -> None:
    """Refuse a value nested beyond MAX_DECODE_DEPTH or holding more than MAX_DECODE_VALUES
    values once shared parts are counted each time they appear; a part that contains itself
    is refused too. Iterative and linear in the distinct parts, whatever they expand to."""
    done: dict[int, tuple[int, int]] = {}  # id -> (values, depth)
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            parts = [done[id(child)] for child in children(node)]
            values = 1 + sum(v for v, _ in parts)
            depth = 1 + max((d for _, d in parts), default=0)
            if depth > MAX_DECODE_DEPTH:
                raise _too_deep()
            if values > MAX_DECODE_VALUES:
                raise FunctionError(f"expands to more than {MAX_DECODE_VALUES} values{aliases}")
            done[key] = (values, depth)
            open_.discard(key)
        elif key not in done:
            if key in open_:
                raise FunctionError(f"a value contains itself{aliases}")
            open_.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children(node) if id(child) not in done)


def _plain_children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return value if isinstance(value, list) else []


def f_jsondecode(args: list[Any]) -> Any:
    text = _decode_input(args)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FunctionError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep() from None
    _check_shape(value, _plain_children)
    return value


def _hash(algo: str) -> Callable[[list[Any]], str]:
    def digest(args: list[Any]) -> str:
        _arity(args, 1)
        return hashlib.new(algo, _str(args[0]).encode()).hexdigest()

    return digest


def _yaml(name: str, *args: Any, **kwargs: Any) -> Any:
    """yaml.safe_dump, its errors as ValueError; PyYAML loads on first use."""
    import yaml  # noqa: PLC0415 - most repos never call yamldecode: keep it off the startup path

    try:
        return getattr(yaml, name)(*args, **kwargs)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


@functools.cache
def _yaml_loader() -> type:
    """PyYAML's SafeLoader that stops composing at MAX_DECODE_DEPTH (it composes recursively)."""
    import yaml  # noqa: PLC0415 - see _yaml

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_DECODE_DEPTH:
                    raise _too_deep()
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return Loader


def f_yamldecode(args: list[Any]) -> Any:
    """yaml.safe_load of one document, its node graph checked (_check_shape) before any
    value is built: aliases are shared nodes there, so a bomb is refused in linear time."""
    import yaml  # noqa: PLC0415 - see _yaml

    def children(node: Any) -> list[Any]:
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        if isinstance(node, yaml.MappingNode):
            return [part for pair in node.value for part in pair]
        return []

    loader = _yaml_loader()(_decode_input(args))
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_shape(node, children, aliases=" (YAML aliases expanded)")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    except RecursionError:
        raise _too_deep() from None
    finally:
        loader.dispose()


def _unary(fn: Callable[[Any], Any]) -> Callable[[list[Any]], Any]:
    def call(args: list[Any]) -> Any:
        _arity(args, 1)
        return fn(args[0])

    return call


def _binary(fn: Callable[[Any, Any], Any]) -> Callable[[list[Any]], Any]:
    def call(args: list[Any]) -> Any:
        _arity(args, 2)
        return fn(args[0], args[1])

    return call


# -- more of Terraform's pure functions --------------------------------------------------------
def f_log(args: list[Any]) -> float:
    _arity(args, 2)
    return math.log(_num(args[0]), _num(args[1]))


def f_parseint(args: list[Any]) -> int:
    _arity(args, 2)
    base = int(_num(args[1]))
    if not 2 <= base <= 62:
        raise FunctionError("base must be between 2 and 62")
    try:
        return int(_str(args[0]), base) if base <= 36 else _parse_base62(_str(args[0]), base)
    except ValueError:
        raise FunctionError(f"cannot parse {args[0]!r} as a base {base} integer") from None


def _parse_base62(text: str, base: int) -> int:
    digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.removeprefix("+"))
    value = 0
    for char in body:
        digit = digits.find(char)
        if digit < 0 or digit >= base:
            raise ValueError(char)
        value = value * base + digit
    return sign * value


def f_chunklist(args: list[Any]) -> list[Any]:
    _arity(args, 2)
    items, size = _list(args[0]), int(_num(args[1]))
    if size < 0:
        raise FunctionError("the chunk size must not be negative")
    if size == 0:
        return [items]
    return [items[i : i + size] for i in range(0, len(items), size)]


def f_matchkeys(args: list[Any]) -> list[Any]:
    _arity(args, 3)
    values, keys, search = _list(args[0]), _list(args[1]), _list(args[2])
    if len(values) != len(keys):
        raise FunctionError("the values and keys lists must have the same length")
    return [v for v, k in zip(values, keys, strict=True) if k in search]


def f_setintersection(args: list[Any]) -> list[Any]:
    if not args:
        raise FunctionError("takes at least one set")
    first = f_distinct([_list(args[0])])
    return [x for x in first if all(x in _list(other) for other in args[1:])]


def f_setsubtract(args: list[Any]) -> list[Any]:
    _arity(args, 2)
    return [x for x in f_distinct([_list(args[0])]) if x not in _list(args[1])]


def f_setproduct(args: list[Any]) -> list[Any]:
    if len(args) < 2:
        raise FunctionError("takes at least two sets")
    product: list[list[Any]] = [[]]
    for arg in args:
        product = [[*prefix, item] for prefix in product for item in _list(arg)]
    return product


def f_transpose(args: list[Any]) -> dict[str, list[str]]:
    _arity(args, 1)
    out: dict[str, list[str]] = {}
    for key, values in sorted(_map(args[0]).items()):
        for value in _list(values):
            out.setdefault(_str(value), []).append(key)
    return {k: sorted(v) for k, v in sorted(out.items())}


def f_csvdecode(args: list[Any]) -> list[dict[str, str]]:
    try:
        rows = list(csv.reader(io.StringIO(_decode_input(args))))
    except csv.Error as exc:  # e.g. a field over csv's limit (128 KiB)
        raise FunctionError(f"not valid CSV: {exc}") from None
    if not rows:
        raise FunctionError("missing header line")
    header, body = rows[0], rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise FunctionError(f"line {number}: wrong number of fields")
    return [dict(zip(header, row, strict=True)) for row in body]


def f_base64gzip(args: list[Any]) -> str:
    _arity(args, 1)
    return base64.b64encode(gzip.compress(_str(args[0]).encode(), mtime=0)).decode()


def f_textencodebase64(args: list[Any]) -> str:
    _arity(args, 2)
    try:
        return base64.b64encode(_str(args[0]).encode(_str(args[1]))).decode()
    except LookupError:
        raise FunctionError(f"unsupported encoding {args[1]!r}") from None


def f_textdecodebase64(args: list[Any]) -> str:
    _arity(args, 2)
    try:
        return base64.b64decode(_str(args[0])).decode(_str(args[1]))
    except LookupError:
        raise FunctionError(f"unsupported encoding {args[1]!r}") from None


def _b64hash(algo: str) -> Callable[[list[Any]], str]:
    def digest(args: list[Any]) -> str:
        _arity(args, 1)
        return base64.b64encode(hashlib.new(algo, _str(args[0]).encode()).digest()).decode()

    return digest


def f_cidrnetmask(args: list[Any]) -> str:
    _arity(args, 1)
    network = ipaddress.ip_network(_str(args[0]), strict=False)
    if network.version != 4:
        raise FunctionError("only IPv4 networks have a netmask")
    return str(network.netmask)


def f_cidrsubnets(args: list[Any]) -> list[str]:
    if not args:
        raise FunctionError("takes a prefix and at least one number of new bits")
    network = ipaddress.ip_network(_str(args[0]), strict=False)
    current = int(network.network_address)
    out = []
    for raw in args[1:]:
        newbits = int(_num(raw))
        prefix = network.prefixlen + newbits
        if newbits < 1 or prefix > network.max_prefixlen:
            raise FunctionError(f"{newbits} new bits do not fit in {network}")
        size = 1 << (network.max_prefixlen - prefix)
        current = (current + size - 1) // size * size  # align to the subnet size
        subnet = ipaddress.ip_network((current, prefix))
        if not subnet.subnet_of(network):  # type: ignore[arg-type]  # same IP version
            raise FunctionError(f"not enough room in {network} for another /{prefix}")
        out.append(str(subnet))
        current += size
    return out


def f_uuidv5(args: list[Any]) -> str:
    _arity(args, 2)
    namespaces = {"dns": uuid.NAMESPACE_DNS, "url": uuid.NAMESPACE_URL, "oid": uuid.NAMESPACE_OID}
    namespaces["x500"] = uuid.NAMESPACE_X500
    raw = _str(args[0])
    try:
        namespace = namespaces.get(raw) or uuid.UUID(raw)
    except ValueError:
        raise FunctionError(f"namespace must be dns, url, oid, x500 or a UUID, got {raw!r}") from None
    return str(uuid.uuid5(namespace, _str(args[1])))


def _timestamp(value: Any) -> datetime.datetime:
    text = _str(value, "timestamp")
    try:
        stamp = datetime.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise FunctionError(f"not a RFC 3339 timestamp: {text!r}") from None
    if "T" not in text.upper() or stamp.tzinfo is None:
        raise FunctionError(f"not a RFC 3339 timestamp: {text!r}")
    return stamp


def _rfc3339(stamp: datetime.datetime) -> str:
    text = stamp.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def f_timecmp(args: list[Any]) -> int:
    _arity(args, 2)
    a, b = _timestamp(args[0]), _timestamp(args[1])
    return 0 if a == b else (-1 if a < b else 1)


_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def f_timeadd(args: list[Any]) -> str:
    _arity(args, 2)
    stamp, text = _timestamp(args[0]), _str(args[1], "duration")
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.removeprefix("+"))
    parts = _DURATION.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise FunctionError(f"not a duration: {text!r} (e.g. 1h30m, -10s)")
    seconds = sign * sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    return _rfc3339(stamp + datetime.timedelta(seconds=seconds))


_DATE_TOKENS = re.compile(
    r"'(?:[^']|'')*'|YYYY|YY|MMMM|MMM|MM|M|DD|D|EEEE|EEE|hh|h|HH|H|AA|aa|mm|m|ss|s|ZZZZZ|ZZZZ|ZZZ|Z|.", re.S
)


def f_formatdate(args: list[Any]) -> str:
    _arity(args, 2)
    spec, stamp = _str(args[0], "format"), _timestamp(args[1])
    offset = stamp.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    hour12 = stamp.hour % 12 or 12
    values = {
        "YYYY": f"{stamp.year:04d}",
        "YY": f"{stamp.year % 100:02d}",
        "MMMM": stamp.strftime("%B"),
        "MMM": stamp.strftime("%b"),
        "MM": f"{stamp.month:02d}",
        "M": str(stamp.month),
        "DD": f"{stamp.day:02d}",
        "D": str(stamp.day),
        "EEEE": stamp.strftime("%A"),
        "EEE": stamp.strftime("%a"),
        "hh": f"{stamp.hour:02d}",
        "h": str(stamp.hour),
        "HH": f"{hour12:02d}",
        "H": str(hour12),
        "AA": "AM" if stamp.hour < 12 else "PM",
        "aa": "am" if stamp.hour < 12 else "pm",
        "mm": f"{stamp.minute:02d}",
        "m": str(stamp.minute),
        "ss": f"{stamp.second:02d}",
        "s": str(stamp.second),
        "ZZZZZ": f"{sign}{hours:02d}:{mins:02d}",
        "ZZZZ": f"{sign}{hours:02d}{mins:02d}",
        "ZZZ": "UTC" if minutes == 0 else f"{sign}{hours:02d}{mins:02d}",
        "Z": "Z" if minutes == 0 else f"{sign}{hours:02d}:{mins:02d}",
    }
    out = []
    for token in _DATE_TOKENS.findall(spec):
        if token.startswith("'") and len(token) > 1:
            out.append(token[1:-1].replace("''", "'"))
        elif token in values:
            out.append(values[token])
        elif token.isalpha():
            raise FunctionError(f"invalid date format verb {token!r}")
        else:
            out.append(token)
    return "".join(out)


def f_deep_merge(args: list[Any]) -> dict[str, Any]:
    """Terragrunt's deep_merge(): maps merged recursively, lists appended, later arguments win."""
    result: dict[str, Any] = {}
    for arg in args:
        result = deep_merge(result, _map(arg))
    return result


_SEMVER = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")
_CONSTRAINT = re.compile(r"\s*(~>|>=|<=|!=|=|>|<)?\s*(\S+)\s*")


def _semver(text: str) -> tuple[tuple[int, int, int], int, str]:
    match = _SEMVER.fullmatch(text.strip())
    if match is None:
        raise FunctionError(f"invalid version {text!r}")
    numbers = tuple(int(g or 0) for g in match.groups()[:3])
    given = sum(1 for g in match.groups()[:3] if g is not None)
    return (numbers[0], numbers[1], numbers[2]), given, match.group(4) or ""


def _version_key(parsed: tuple[tuple[int, int, int], int, str]) -> tuple[tuple[int, int, int], int, str]:
    numbers, _, pre = parsed
    return numbers, 0 if pre else 1, pre  # a prerelease sorts before its release


def f_constraint_check(args: list[Any]) -> bool:
    """Terragrunt's constraint_check(version, constraint), with go-version's operators."""
    _arity(args, 2)
    version = _semver(_str(args[0]))
    have = _version_key(version)
    for part in _str(args[1]).split(","):
        match = _CONSTRAINT.fullmatch(part)
        if match is None:
            raise FunctionError(f"invalid constraint {args[1]!r}")
        op, target = match.group(1) or "=", _semver(match.group(2))
        want = _version_key(target)
        if op == "~>":
            numbers, given, _ = target
            upper = (numbers[0] + 1, 0, 0) if given <= 2 else (numbers[0], numbers[1] + 1, 0)
            ok = want <= have and version[0] < upper
        else:
            ok = {
                "=": have == want,
                "!=": have != want,
                ">": have > want,
                "<": have < want,
                ">=": have >= want,
                "<=": have <= want,
            }[op]
        if not ok:
            return False
    return True


PURE: dict[str, Callable[[list[Any]], Any]] = {
    "format": f_format,
    "formatlist": f_formatlist,
    "lower": _unary(lambda v: _str(v).lower()),
    "upper": _unary(lambda v: _str(v).upper()),
    "title": _unary(lambda v: _str(v).title()),
    "trimspace": _unary(lambda v: _str(v).strip()),
    "chomp": _unary(lambda v: _str(v).rstrip("\r\n")),
    "strrev": _unary(lambda v: _str(v)[::-1]),
    "trim": f_trim,
    "trimprefix": f_trimprefix,
    "trimsuffix": f_trimsuffix,
    "replace": f_replace,
    "split": f_split,
    "join": f_join,
    "substr": f_substr,
    "indent": f_indent,
    "regex": f_regex,
    "regexall": f_regexall,
    "startswith": _binary(lambda s, p: _str(s).startswith(_str(p))),
    "endswith": _binary(lambda s, p: _str(s).endswith(_str(p))),
    "strcontains": _binary(lambda s, p: _str(p) in _str(s)),
    "merge": f_merge,
    "concat": f_concat,
    "lookup": f_lookup,
    "element": f_element,
    "flatten": f_flatten,
    "distinct": f_distinct,
    "compact": _unary(lambda v: [x for x in _list(v) if x not in (None, "")]),
    "length": f_length,
    "keys": f_keys,
    "values": f_values,
    "slice": f_slice,
    "zipmap": f_zipmap,
    "reverse": _unary(lambda v: list(reversed(_list(v)))),
    "sort": f_sort,
    "contains": f_contains,
    "index": f_index,
    "coalesce": f_coalesce,
    "coalescelist": f_coalescelist,
    "one": f_one,
    "range": f_range,
    "setunion": f_setunion,
    "toset": _unary(lambda v: f_distinct([_list(v)])),
    "tolist": f_tolist,
    "tomap": f_tomap,
    "tobool": f_tobool,
    "tonumber": f_tonumber,
    "tostring": f_tostring,
    "max": lambda a: max(_num(x) for x in a),
    "min": lambda a: min(_num(x) for x in a),
    "sum": _unary(lambda v: sum(_num(x) for x in _list(v))),
    "abs": _unary(lambda v: abs(_num(v))),
    "ceil": _unary(lambda v: math.ceil(_num(v))),
    "floor": _unary(lambda v: math.floor(_num(v))),
    "alltrue": _unary(lambda v: all(x is True or x == "true" for x in _list(v))),
    "anytrue": _unary(lambda v: any(x is True or x == "true" for x in _list(v))),
    "jsonencode": _unary(lambda v: json.dumps(v, separators=(",", ":"), sort_keys=True)),
    "jsondecode": f_jsondecode,
    "yamldecode": f_yamldecode,
    "yamlencode": _unary(lambda v: _yaml("safe_dump", v, sort_keys=True)),
    "base64encode": _unary(lambda v: base64.b64encode(_str(v).encode()).decode()),
    "base64decode": _unary(lambda v: base64.b64decode(_str(v)).decode()),
    "md5": _hash("md5"),
    "sha1": _hash("sha1"),
    "sha256": _hash("sha256"),
    "sha512": _hash("sha512"),
    "cidrsubnet": f_cidrsubnet,
    "cidrhost": f_cidrhost,
    "dirname": _unary(lambda v: posixpath.dirname(_str(v))),
    "basename": _unary(lambda v: posixpath.basename(_str(v))),
    "pathexpand": _unary(lambda v: str(Path(_str(v)).expanduser())),
    "get_platform": lambda a: platform.system().lower(),
    "log": f_log,
    "parseint": f_parseint,
    "pow": _binary(lambda a, b: _num(a) ** _num(b)),
    "signum": _unary(lambda v: (_num(v) > 0) - (_num(v) < 0)),
    "chunklist": f_chunklist,
    "matchkeys": f_matchkeys,
    "setintersection": f_setintersection,
    "setsubtract": f_setsubtract,
    "setproduct": f_setproduct,
    "transpose": f_transpose,
    "csvdecode": f_csvdecode,
    "base64gzip": f_base64gzip,
    "textencodebase64": f_textencodebase64,
    "textdecodebase64": f_textdecodebase64,
    "urlencode": _unary(lambda v: urllib.parse.quote(_str(v), safe="-_.~")),
    "base64sha256": _b64hash("sha256"),
    "base64sha512": _b64hash("sha512"),
    "cidrnetmask": f_cidrnetmask,
    "cidrsubnets": f_cidrsubnets,
    "uuidv5": f_uuidv5,
    "timecmp": f_timecmp,
    "timeadd": f_timeadd,
    "formatdate": f_formatdate,
    # refarch does not track sensitivity: a sensitive value is masked by name in the logs
    "sensitive": _unary(lambda v: v),
    "nonsensitive": _unary(lambda v: v),
    "deep_merge": f_deep_merge,
    "constraint_check": f_constraint_check,
}

# Functions whose result depends on the whole value: an Unknown anywhere inside makes the
# result Unknown. The others only look at the top level of their arguments.
DEEP_UNKNOWN = {
    "format",
    "formatlist",
    "jsonencode",
    "join",
    "sha256",
    "sha1",
    "md5",
    "sha512",
    "base64encode",
    "replace",
    "lower",
    "upper",
    "title",
    "trimspace",
    "contains",
    "index",
    "distinct",
    "sort",
    "length",
    "keys",
    "values",
    "flatten",
    "split",
    "substr",
    "regex",
    "regexall",
    "startswith",
    "endswith",
}

# Values refarch will not compute while reading config: the result is Unknown.
OPAQUE = {
    "run_cmd",
    "sops_decrypt_file",
    "uuid",
    "timestamp",
    "get_aws_caller_identity_arn",
    "get_aws_caller_identity_user_id",
    "local_exec",
    "plantimestamp",
    "bcrypt",
    "rsadecrypt",
}


def call_pure(name: str, args: list[Any]) -> Any:
    """Call a pure function, propagating Unknown arguments."""
    fn = PURE[name]
    check = contains_unknown if name in DEEP_UNKNOWN else (lambda v: isinstance(v, Unknown))
    if any(check(a) for a in args):
        return Unknown(f"{name}(...)")
    try:
        return fn(args)
    except FunctionError:
        raise
    except (
        TypeError,
        ValueError,
        KeyError,
        IndexError,
        OverflowError,
        ZeroDivisionError,
        UnicodeError,
        re.error,
    ) as exc:
        raise FunctionError(str(exc) or type(exc).__name__) from None
