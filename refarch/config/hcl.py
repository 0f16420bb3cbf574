"""The only python-hcl2 importer: parse HCL text into a compact tuple AST with line numbers.

python-hcl2's Lark tree keeps every token and newline; evaluation only needs the structure,
so the tree is compiled into nested tuples (see `Expr`), which pickle and marshal cheaply:
parsing can run in worker processes and be cached on disk by content hash.

AST shapes (every expression is a tuple whose first item is its tag):
  ("lit", value)                  ("tmpl", parts, line)   parts: str | Expr
  ("var", name, line)             ("attr", obj, name, line)       ("index", obj, key, line)
  ("splat", obj, ops, line)       ops: (("attr", name) | ("index", Expr), ...)
  ("call", name, args, expand_last, line)
  ("bin", op, left, right, line)  ("un", op, operand, line)       ("cond", c, a, b, line)
  ("tuple", items)                ("object", ((key, value), ...)) key: ("key", name) | Expr
  ("for_t", key_var, value_var, collection, value, condition, line)
  ("for_o", key_var, value_var, collection, key, value, grouped, condition, line)
  ("paren", expr)
A body is a tuple of ("attr", name, Expr, line) and ("block", type, labels, body, line).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refarch.errors import HclSyntaxError

if TYPE_CHECKING:
    from lark import Lark, Token, Tree
    from lark.exceptions import UnexpectedInput
else:  # lark (25 ms to import) loads with the parser, on the first parse: a warm cache needs none
    Token = Tree = None

Expr = tuple[Any, ...]
Body = tuple[Any, ...]

_ESCAPES = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


@functools.cache
def _parser() -> Lark:
    """python-hcl2's own grammar and post-lexer, without position propagation on trees:
    line numbers are taken from tokens, which always carry them, and parsing is faster."""
    global Token, Tree  # the compiler's isinstance checks, bound on first use
    import hcl2  # noqa: PLC0415 - see the TYPE_CHECKING imports above
    import lark  # noqa: PLC0415
    from hcl2.postlexer import PostLexer  # noqa: PLC0415

    Token, Tree = lark.Token, lark.Tree  # type: ignore[misc]
    return lark.Lark.open(
        str(Path(hcl2.__file__).parent / "hcl2.lark"),
        parser="lalr",
        postlex=PostLexer(),
        propagate_positions=False,
        cache=True,
    )


def load_parser() -> None:
    """Import lark and build the parser now (before forking parse workers, which inherit it)."""
    _parser()


def parse_text(text: str, path: str = "<string>") -> Body:
    """Parse HCL text into a body AST; raise HclSyntaxError with the file, line and column."""
    from lark.exceptions import LarkError, UnexpectedInput  # noqa: PLC0415 - loaded by _parser()

    try:
        tree: Tree[Any] = _parser().parse(text + "\n")
    except UnexpectedInput as exc:
        raise HclSyntaxError(
            _syntax_detail(exc),
            path=path,
            line=exc.line or None,
            column=exc.column or None,
            hint="fix the HCL syntax at that position",
        ) from None
    except (LarkError, RecursionError) as exc:
        raise HclSyntaxError(f"cannot parse: {exc}", path=path) from None
    try:
        body = tree.children[0]
        assert isinstance(body, Tree)
        return _Compiler(path).body(body)
    except HclSyntaxError:
        raise
    except (ValueError, IndexError, AttributeError, RecursionError) as exc:
        raise HclSyntaxError(f"unsupported HCL construct: {exc}", path=path) from None


def parse_config(text: str, path: str = "<string>") -> Body:
    """A Terragrunt config file in either syntax (HCL's JSON syntax when the name ends in
    .json), with Terragrunt's rule that some blocks appear at most once (SINGLE_BLOCKS)."""
    body = parse_json(text, path) if path.endswith(".json") else parse_text(text, path)
    _check_single_blocks(body, path)
    return body


# Blocks a Terragrunt config has at most one of: Terragrunt decodes each into one struct
# field ("Duplicate terraform block") and refuses a second locals block; the others
# (dependency, feature, generate, include, unit, stack, extra_arguments, hooks) repeat.
SINGLE_BLOCKS = frozenset(
    ("locals", "terraform", "remote_state", "catalog", "engine", "dependencies", "exclude", "errors")
)
UNIQUE_LABELS = frozenset(("generate",))  # "Detected generate blocks with the same name"


def _check_single_blocks(body: Body, path: str) -> None:
    seen: dict[tuple[str, ...], int] = {}
    for item in body:
        if item[0] != "block" or item[1] not in SINGLE_BLOCKS | UNIQUE_LABELS:
            continue
        key = (item[1], *item[2]) if item[1] in UNIQUE_LABELS else (item[1],)
        if key in seen:
            what = " ".join((item[1], *(f'"{label}"' for label in item[2])))
            raise HclSyntaxError(
                f"duplicate {what} block: one is already defined at {path}:{seen[key]}; "
                f"Terragrunt allows only one {what} block in a file",
                path=path,
                line=item[4],
                hint=f"merge the two blocks (lines {seen[key]} and {item[4]}) into one",
            )
        seen[key] = item[4]


def parse_expression(text: str, path: str = "<string>", line: int = 1) -> Expr:
    """Parse a single HCL expression (used for interpolations inside heredocs)."""
    body = parse_text(f"__expr__ = {text}\n", path)
    if len(body) != 1 or body[0][0] != "attr":
        raise HclSyntaxError(f"not a single expression: {text!r}", path=path, line=line)
    expr: Expr = _shift_lines(body[0][2], line - 1)
    return expr


def _syntax_detail(exc: UnexpectedInput) -> str:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken  # noqa: PLC0415

    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            return "unexpected end of file (an unclosed block, string or bracket?)"
        return f"unexpected {token.value!r}"
    if isinstance(exc, UnexpectedCharacters):
        return f"unexpected character {exc.char!r}"
    return "syntax error"


def _shift_lines(node: Any, offset: int) -> Any:
    """Move the line numbers of an expression parsed out of context (heredoc interpolation)."""
    if not offset or not isinstance(node, tuple):
        return node
    items = [_shift_lines(item, offset) for item in node]
    if node and node[0] in _LINE_LAST and isinstance(items[-1], int):
        items[-1] += offset
    return tuple(items)


_LINE_LAST = {
    "tif",
    "tfor",
    "tmpl",
    "var",
    "attr",
    "index",
    "splat",
    "call",
    "bin",
    "un",
    "cond",
    "for_t",
    "for_o",
}


def _line(node: Tree[Any] | Token) -> int:
    """The line of a node: its first token's (trees carry no positions, see _parser)."""
    while isinstance(node, Tree):
        if not node.children:
            return 0
        node = node.children[0]
    return node.line or 0


def _token(tree: Tree[Any]) -> Token:
    token = tree.children[0]
    assert isinstance(token, Token)
    return token


def _trees(node: Tree[Any]) -> list[Tree[Any]]:
    return [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]


def _unescape(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "uU" and len(code) > 1:
            return chr(int(code[1:], 16))
        return _SIMPLE_ESCAPES.get(code, "\\" + code)

    return _ESCAPES.sub(repl, text) if "\\" in text else text


class _Compiler:
    """Lark tree -> tuple AST."""

    def __init__(self, path: str) -> None:
        self.path = path

    def body(self, tree: Tree[Any]) -> Body:
        items: list[Any] = []
        set_at: dict[str, int] = {}
        for child in _trees(tree):
            if child.data == "attribute":
                name_node, expr = _trees(child)
                name, line = self.name(name_node), _line(child)
                if name in set_at:  # HCL's "Attribute redefined", in every body
                    raise HclSyntaxError(
                        f'attribute "{name}" redefined: it was already set at {self.path}:{set_at[name]}; '
                        "each attribute may be set only once",
                        path=self.path,
                        line=line,
                        hint=f"keep one of the two (lines {set_at[name]} and {line}), or merge their values",
                    )
                set_at[name] = line
                items.append(("attr", name, self.expr(expr), line))
            elif child.data == "block":
                parts = _trees(child)
                block_type = self.name(parts[0])
                labels = tuple(self.label(p) for p in parts[1:-1])
                items.append(("block", block_type, labels, self.body(parts[-1]), _line(child)))
        return tuple(items)

    def name(self, tree: Tree[Any]) -> str:
        return str(tree.children[0])

    def label(self, tree: Tree[Any]) -> str:
        if tree.data == "string":
            parts = self.string_parts(tree)
            if all(isinstance(p, str) for p in parts):
                return "".join(parts)
            raise HclSyntaxError("block labels cannot be interpolated", path=self.path, line=_line(tree))
        return self.name(tree)

    # -- expressions -----------------------------------------------------------------------
    def expr(self, tree: Tree[Any]) -> Expr:
        method = getattr(self, "x_" + tree.data, None)
        if method is None:
            raise HclSyntaxError(f"unsupported expression {tree.data!r}", path=self.path, line=_line(tree))
        result: Expr = method(tree)
        return result

    def x_expr_term(self, tree: Tree[Any]) -> Expr:
        inner = _trees(tree)
        if tree.children and isinstance(tree.children[0], Token) and tree.children[0].type == "LPAR":
            return ("paren", self.expr(inner[0]))
        return self.expr(inner[0])

    def x_identifier(self, tree: Tree[Any]) -> Expr:
        return ("var", str(tree.children[0]), _line(tree))

    def x_literal_value(self, tree: Tree[Any]) -> Expr:
        return ("lit", {"true": True, "false": False, "null": None}[str(tree.children[0])])

    def x_int_lit(self, tree: Tree[Any]) -> Expr:
        return ("lit", int(str(tree.children[0])))

    def x_float_lit(self, tree: Tree[Any]) -> Expr:
        value = float(str(tree.children[0]))
        return (
            "lit",
            int(value) if value.is_integer() and "e" not in str(tree.children[0]).lower() else value,
        )

    def x_string(self, tree: Tree[Any]) -> Expr:
        parts = self.string_parts(tree)
        if all(isinstance(p, str) for p in parts):
            return ("lit", "".join(parts))
        return ("tmpl", tuple(parts), _line(tree))

    def x_template_string(self, tree: Tree[Any]) -> Expr:
        return ("lit", _unescape(str(tree.children[0])[2:-2]))

    def string_parts(self, tree: Tree[Any]) -> list[Any]:
        parts: list[Any] = []
        for part in _trees(tree):
            child = part.children[0]
            if isinstance(child, Token):
                if child.type in ("ESCAPED_INTERPOLATION", "ESCAPED_DIRECTIVE"):
                    parts.append(str(child)[1:])
                else:
                    parts.append(_unescape(str(child)))
            elif child.data == "interpolation":
                parts.append(self.expr(_trees(child)[0]))
            else:
                parts.append(self.directive(child))
        return nest_directives(parts, self.path)

    def directive(self, tree: Tree[Any]) -> tuple[Any, ...]:
        """A %{if}/%{else}/%{endif}/%{for}/%{endfor} marker, nested later."""
        tokens = [c for c in tree.children if isinstance(c, Token)]
        strip_left = len(tokens) > 1 and tokens[1].type == "STRIP_MARKER"
        strip_right = len(tokens) > 1 and tokens[-2].type == "STRIP_MARKER"
        kind = tree.data.removeprefix("template_").removesuffix("_start")
        inner = _trees(tree)
        payload: Any = None
        if kind == "if":
            payload = self.expr(inner[-1])
        elif kind == "for":
            names = [self.name(t) for t in inner if t.data == "identifier"]
            key_var, value_var = (names[0], names[1]) if len(names) == 2 else (None, names[0])
            payload = (key_var, value_var, self.expr(inner[-1]))
        return ("dir", kind, payload, strip_left, strip_right, _line(tree))

    def x_heredoc_template(self, tree: Tree[Any]) -> Expr:
        return self.heredoc(_token(tree), trim=False)

    def x_heredoc_template_trim(self, tree: Tree[Any]) -> Expr:
        return self.heredoc(_token(tree), trim=True)

    def heredoc(self, token: Token, *, trim: bool) -> Expr:
        lines = str(token).split("\n")
        body_lines = lines[1:-2]  # drop "<<EOT", the closing marker line, and the final ""
        if trim:
            indents = [len(x) - len(x.lstrip(" \t")) for x in body_lines if x.strip()]
            cut = min(indents, default=0)
            body_lines = [x[cut:] for x in body_lines]
        text = "".join(x.rstrip("\r") + "\n" for x in body_lines)
        parts = split_template(text, self.path, (token.line or 0) + 1)
        if all(isinstance(p, str) for p in parts):
            return ("lit", "".join(parts))
        return ("tmpl", tuple(parts), token.line or 0)

    def x_tuple(self, tree: Tree[Any]) -> Expr:
        return ("tuple", tuple(self.expr(t) for t in _trees(tree)))

    def x_object(self, tree: Tree[Any]) -> Expr:
        elems = []
        for elem in _trees(tree):
            key_node, value = _trees(elem)
            key_inner = _trees(key_node)[0]
            key: Expr
            if key_inner.data == "keyword":
                key = ("key", self.name(key_inner))
            else:
                compiled = self.expr(key_inner)
                key = ("key", compiled[1]) if compiled[0] == "var" else compiled
            elems.append((key, self.expr(value)))
        return ("object", tuple(elems))

    def x_function_call(self, tree: Tree[Any]) -> Expr:
        names = [self.name(t) for t in _trees(tree) if t.data == "identifier"]
        args_tree = next((t for t in _trees(tree) if t.data == "arguments"), None)
        args: tuple[Expr, ...] = ()
        expand = False
        if args_tree is not None:
            args = tuple(self.expr(t) for t in _trees(args_tree))
            expand = any(isinstance(t, Token) and t.type == "ELLIPSIS" for t in args_tree.children)
        return ("call", "::".join(names), args, expand, _line(tree))

    def x_index_expr_term(self, tree: Tree[Any]) -> Expr:
        obj, index = _trees(tree)
        return ("index", self.expr(obj), self.index_key(index), _line(tree))

    def index_key(self, index: Tree[Any]) -> Expr:
        if index.data == "short_index":
            return ("lit", int(str(index.children[1])))
        return self.expr(_trees(index)[0])

    def x_get_attr_expr_term(self, tree: Tree[Any]) -> Expr:
        obj, get_attr = _trees(tree)
        return ("attr", self.expr(obj), self.name(_trees(get_attr)[0]), _line(tree))

    def x_attr_splat_expr_term(self, tree: Tree[Any]) -> Expr:
        return self.splat(tree)

    def x_full_splat_expr_term(self, tree: Tree[Any]) -> Expr:
        return self.splat(tree)

    def splat(self, tree: Tree[Any]) -> Expr:
        obj, splat = _trees(tree)
        ops: list[Any] = []
        for op in _trees(splat):
            if op.data == "get_attr":
                ops.append(("attr", self.name(_trees(op)[0])))
            else:
                ops.append(("index", self.index_key(op)))
        return ("splat", self.expr(obj), tuple(ops), _line(tree))

    def x_binary_op(self, tree: Tree[Any]) -> Expr:
        left, term = _trees(tree)[:2]
        operator, right = _trees(term)
        return ("bin", str(operator.children[0]), self.expr(left), self.expr(right), _line(tree))

    def x_unary_op(self, tree: Tree[Any]) -> Expr:
        op = str(tree.children[0])
        return ("un", op, self.expr(_trees(tree)[0]), _line(tree))

    def x_conditional(self, tree: Tree[Any]) -> Expr:
        cond, then, other = _trees(tree)
        return ("cond", self.expr(cond), self.expr(then), self.expr(other), _line(tree))

    def for_intro(self, tree: Tree[Any]) -> tuple[str | None, str, Expr]:
        parts = _trees(tree)
        names = [self.name(p) for p in parts if p.data == "identifier"]
        collection = self.expr(parts[-1])
        if len(names) == 2:
            return names[0], names[1], collection
        return None, names[0], collection

    def x_for_tuple_expr(self, tree: Tree[Any]) -> Expr:
        parts = _trees(tree)
        key_var, value_var, collection = self.for_intro(parts[0])
        cond = next((self.expr(_trees(p)[0]) for p in parts if p.data == "for_cond"), None)
        return ("for_t", key_var, value_var, collection, self.expr(parts[1]), cond, _line(tree))

    def x_for_object_expr(self, tree: Tree[Any]) -> Expr:
        parts = _trees(tree)
        key_var, value_var, collection = self.for_intro(parts[0])
        cond = next((self.expr(_trees(p)[0]) for p in parts if p.data == "for_cond"), None)
        grouped = any(isinstance(t, Token) and t.type == "ELLIPSIS" for t in tree.children)
        return (
            "for_o",
            key_var,
            value_var,
            collection,
            self.expr(parts[1]),
            self.expr(parts[2]),
            grouped,
            cond,
            _line(tree),
        )


def _merge_strings(parts: list[Any]) -> list[Any]:
    merged: list[Any] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged


def split_template(text: str, path: str, line: int) -> list[Any]:
    """Split heredoc text into literal strings and compiled `${...}` expressions."""
    parts: list[Any] = []
    pos = 0
    literal = []
    while pos < len(text):
        if text.startswith("$${", pos) or text.startswith("%%{", pos):
            literal.append(text[pos + 1 : pos + 3])
            pos += 3
        elif text.startswith("${", pos):
            end = _matching_brace(text, pos + 2, path, line + text.count("\n", 0, pos))
            inner = text[pos + 2 : end]
            here = line + text.count("\n", 0, pos)
            if inner.startswith("~"):
                inner = inner[1:]
                if literal:
                    literal[-1] = literal[-1].rstrip()
            strip_after = inner.endswith("~")
            if strip_after:
                inner = inner[:-1]
            parts.append("".join(literal))
            literal = []
            parts.append(parse_expression(inner.strip(), path, here))
            pos = end + 1
            if strip_after:
                while pos < len(text) and text[pos] in " \t\r\n":
                    pos += 1
        elif text.startswith("%{", pos):
            here = line + text.count("\n", 0, pos)
            end = _matching_brace(text, pos + 2, path, here)
            parts.append("".join(literal))
            literal = []
            parts.append(_heredoc_directive(text[pos + 2 : end], path, here))
            pos = end + 1
        else:
            literal.append(text[pos])
            pos += 1
    parts.append("".join(literal))
    return [p for p in nest_directives(parts, path) if p != ""]


_FOR_HEAD = re.compile(r"for\s+([A-Za-z_][\w-]*)(?:\s*,\s*([A-Za-z_][\w-]*))?\s+in\s+(.+)$", re.S)


def _heredoc_directive(inner: str, path: str, line: int) -> tuple[Any, ...]:
    strip_left, strip_right = inner.startswith("~"), inner.endswith("~")
    body = inner.strip("~").strip()
    word = body.split(None, 1)[0] if body else ""
    if word in ("else", "endif", "endfor") and body == word:
        return ("dir", word, None, strip_left, strip_right, line)
    if word == "if":
        return ("dir", "if", parse_expression(body[2:].strip(), path, line), strip_left, strip_right, line)
    match = _FOR_HEAD.match(body)
    if word == "for" and match:
        first, second, collection = match.groups()
        key_var, value_var = (first, second) if second else (None, first)
        return (
            "dir",
            "for",
            (key_var, value_var, parse_expression(collection, path, line)),
            strip_left,
            strip_right,
            line,
        )
    raise HclSyntaxError(f"unknown template directive %{{{inner}}}", path=path, line=line)


def nest_directives(parts: list[Any], path: str) -> list[Any]:
    """Turn flat %{...} markers into ("tif", cond, then, else, line) and
    ("tfor", key, value, collection, body, line) parts, applying ~ strip markers."""
    flat = _merge_strings(parts)
    if not any(isinstance(p, tuple) and p[0] == "dir" for p in flat):
        return flat
    for index, part in enumerate(flat):
        if isinstance(part, tuple) and part[0] == "dir":
            if part[3] and index > 0 and isinstance(flat[index - 1], str):
                flat[index - 1] = flat[index - 1].rstrip()
            if part[4] and index + 1 < len(flat) and isinstance(flat[index + 1], str):
                flat[index + 1] = flat[index + 1].lstrip()
    stack: list[tuple[tuple[Any, ...] | None, list[Any], list[Any] | None]] = [(None, [], None)]
    for part in flat:
        if not (isinstance(part, tuple) and part[0] == "dir"):
            (stack[-1][2] if stack[-1][2] is not None else stack[-1][1]).append(part)
            continue
        kind, line = part[1], part[5]
        if kind in ("if", "for"):
            stack.append((part, [], None))
        elif kind == "else":
            opener, body, other = stack[-1]
            if opener is None or opener[1] != "if" or other is not None:
                raise HclSyntaxError("%{else} without a matching %{if}", path=path, line=line)
            stack[-1] = (opener, body, [])
        else:
            opener, body, other = stack.pop() if len(stack) > 1 else (None, [], None)
            if opener is None or opener[1] != kind.removeprefix("end"):
                raise HclSyntaxError(
                    f"%{{{kind}}} without a matching opening directive", path=path, line=line
                )
            if kind == "endif":
                node: tuple[Any, ...] = ("tif", opener[2], tuple(body), tuple(other or ()), line)
            else:
                node = ("tfor", *opener[2], tuple(body), line)
            target = stack[-1]
            (target[2] if target[2] is not None else target[1]).append(node)
    if len(stack) > 1:
        opener = stack[-1][0]
        assert opener is not None
        raise HclSyntaxError(f"%{{{opener[1]}}} is never closed", path=path, line=opener[5])
    return stack[0][1]


def _matching_brace(text: str, start: int, path: str, line: int) -> int:
    depth = 0
    pos = start
    quote = False
    while pos < len(text):
        char = text[pos]
        if quote:
            if char == "\\":
                pos += 1
            elif char == '"':
                quote = False
        elif char == '"':
            quote = True
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return pos
            depth -= 1
        pos += 1
    raise HclSyntaxError("unclosed ${ in heredoc", path=path, line=line)


# -- HCL's JSON syntax (terragrunt.hcl.json, root.hcl.json) ------------------------------------
# Which keys are blocks, and how many labels they take: JSON has no syntax for it, so HCL
# decodes it with the schema; this is Terragrunt's schema (an `include` without a label is
# written with the label "" or as a plain object with a `path`).
JSON_BLOCKS: dict[str, int] = {
    "include": 1,
    "locals": 0,
    "dependency": 1,
    "dependencies": 0,
    "terraform": 0,
    "remote_state": 0,
    "generate": 1,
    "feature": 1,
    "exclude": 0,
    "errors": 0,
    "engine": 0,
    "catalog": 0,
}
JSON_SUB_BLOCKS: dict[str, dict[str, int]] = {
    "terraform": {"extra_arguments": 1, "before_hook": 1, "after_hook": 1, "error_hook": 1},
    "errors": {"retry": 1, "ignore": 1},
}


def parse_json(text: str, path: str = "<string>") -> Body:
    """Parse a config in HCL's JSON syntax into the same body AST as parse_text. Strings are
    templates (`${...}`, `%{...}`), as in HCL; line numbers are those of the top-level keys."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        for key in keys:
            if keys.count(key) > 1:  # HCL's JSON syntax: "Duplicate argument"
                raise HclSyntaxError(f'"{key}" is defined twice in one object', path=path)
        return dict(pairs)

    try:
        data = json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise HclSyntaxError(exc.msg, path=path, line=exc.lineno, column=exc.colno) from None
    if not isinstance(data, dict):
        raise HclSyntaxError("a JSON config must be an object", path=path, line=1)
    lines = {key: text.count("\n", 0, text.find(json.dumps(key))) + 1 for key in data}
    return _json_body(data, JSON_BLOCKS, path, lines)


def _json_body(data: dict[str, Any], blocks: dict[str, int], path: str, lines: dict[str, int]) -> Body:
    items: list[Any] = []
    for key, value in data.items():
        line = lines.get(key, 1)
        if key == "//":
            continue  # a comment, in HCL's JSON syntax
        if key not in blocks:
            items.append(("attr", key, _json_expr(value, path, line), line))
            continue
        sub = JSON_SUB_BLOCKS.get(key, {})
        for labels, body in _json_blocks(key, value, blocks[key], path, line):
            items.append(("block", key, labels, _json_body(body, sub, path, {}), line))
    return tuple(items)


def _json_blocks(
    kind: str, value: Any, labels: int, path: str, line: int
) -> list[tuple[tuple[str, ...], Any]]:
    values = value if isinstance(value, list) else [value]
    found: list[tuple[tuple[str, ...], Any]] = []
    for item in values:
        if not isinstance(item, dict):
            raise HclSyntaxError(f"{kind} must be a JSON object", path=path, line=line)
        if labels == 0 or (kind == "include" and "path" in item):
            found.append(((), item))
            continue
        for label, body in item.items():
            if not isinstance(body, dict):
                raise HclSyntaxError(f'{kind} "{label}" must be a JSON object', path=path, line=line)
            found.append(((label,) if label else (), body))
    return found


def _json_expr(value: Any, path: str, line: int) -> Expr:
    if isinstance(value, str):
        parts = split_template(value, path, line)
        if all(isinstance(p, str) for p in parts):
            return ("lit", "".join(parts))
        return ("tmpl", tuple(parts), line)
    if isinstance(value, list):
        return ("tuple", tuple(_json_expr(v, path, line) for v in value))
    if isinstance(value, dict):
        return (
            "object",
            tuple((("key", k), _json_expr(v, path, line)) for k, v in value.items() if k != "//"),
        )
    if isinstance(value, float) and value.is_integer():
        return ("lit", int(value))
    return ("lit", value)
