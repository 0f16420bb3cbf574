"""Evaluate Terragrunt configuration: expressions, locals, includes (expose/merge), dependencies.

One `UnitContext` per evaluated unit (or per `read_terragrunt_config` target) holds what
Terragrunt keeps per config: the unit folder, its includes, its dependency blocks (merged
across the included files), and a record of every file, env var and path probe consulted,
which is the key of the on-disk cache. One `Scope` per file being evaluated holds that
file's locals. Values are plain Python data; `Unknown` stands for what is only known after
apply (dependency outputs without mocks, run_cmd, ...).

Evaluation is memoised by what it depended on (Terragrunt re-evaluates a shared root.hcl for
every unit that includes it). Each local and top-level attribute or block of an included file
is kept with its trace: the calls of Terragrunt's context functions (get_terragrunt_dir,
find_in_parent_folders, path_relative_to_include, get_env, read_terragrunt_config, ...) and
the namespaces (include, dependency, feature, values) it read, with what they gave. Another
unit including the same file reuses the value when asking its own context the same questions
gives the same answers (asking records the files, env vars and probes, as evaluating would),
so a root.hcl's locals are evaluated once per account and its remote_state once per unit.
A read_terragrunt_config target is evaluated once per value of the reader's context that it
consulted (the reading unit's folder, the account), most files once.
"""

from __future__ import annotations

import base64
import glob as globlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refarch.config.functions import OPAQUE, PURE, FunctionError, call_pure
from refarch.config.hcl import Body, Expr, parse_config, parse_text, split_template
from refarch.config.values import Unknown, as_bool, deep_merge, type_name
from refarch.errors import ConfigError, EvaluationError, RefarchError, UnreadableFile
from refarch.files import read_bounded
from refarch.terragrunt_defaults import TERRAGRUNT_RETRYABLE_ERRORS

MERGE_STRATEGIES = ("shallow", "deep", "no_merge")
NOT_MERGED = {"locals", "include"}
BY_NAME = {"dependency", "generate", "feature"}
MAX_DEPTH = 64
FEATURE_ENV = "TG_FEATURE"  # "name=value,name2=value2", as Terragrunt's --feature
TRACED_NAMESPACES = ("include", "dependency", "feature", "values")  # what the unit's context gives


def parse_features(text: str) -> dict[str, str]:
    """TG_FEATURE's `name=value,name2=value2` as a map (an entry without `=` is ignored)."""
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {name.strip(): value.strip() for name, value in pairs if name.strip()}


@dataclass
class Records:
    """What an evaluation consulted: file digests, env vars, and path-existence probes."""

    files: dict[str, str] = field(default_factory=dict)  # absolute path -> sha256
    env: dict[str, str | None] = field(default_factory=dict)
    probes: dict[str, bool] = field(default_factory=dict)  # absolute path -> existed
    # What of the reader's context a read_terragrunt_config target consulted: "original_dir"
    # (get_original_terragrunt_dir), "account_id" (get_aws_account_id).
    context: set[str] = field(default_factory=set)

    def absorb(self, other: Records) -> None:
        self.files.update(other.files)
        self.env.update(other.env)
        self.probes.update(other.probes)
        self.context.update(other.context)


MEMO_KEEP = 4  # contexts kept per memoised value, the latest first (neighbouring units share)
MEMO_GIVE_UP = 32  # a value missed this often and never hit depends on each unit: not looked up
_RAISED = object()  # what a traced question answered with an error


class _Memo:
    """The kept evaluations of one local, attribute or block of one file."""

    __slots__ = ("entries", "hits", "misses")

    def __init__(self) -> None:
        self.entries: list[tuple[tuple[Any, ...], Any]] = []  # (trace, value)
        self.hits = 0
        self.misses = 0


@dataclass
class Include:
    label: str
    path: Path
    expose: bool
    merge_strategy: str
    line: int
    scope: Scope | None = None
    config: dict[str, Any] | None = None


class Loader:
    """Per-run state shared by every unit: parsed files, read_terragrunt_config results."""

    def __init__(
        self,
        root: Path,
        *,
        env: Mapping[str, str],
        parse: Callable[[Path, bytes], Body] | None = None,
        aws_account_id: Callable[[], str] | None = None,
        aws_account_alias: Callable[[], str] | None = None,
        terraform_command: str = "plan",
    ) -> None:
        self.root = root
        self._root_prefix = str(root).rstrip(os.sep) + os.sep
        self._locals: dict[Path, dict[str, tuple[Expr, int]]] = {}
        self.aws_account_alias = aws_account_alias
        self.env = env
        self._parse = parse or (lambda path, data: parse_config(data.decode("utf-8"), self.rel(path)))
        self.aws_account_id = aws_account_id
        self.terraform_command = terraform_command
        self.bodies: dict[Path, tuple[Body, str]] = {}
        self.reads: dict[Path, list[_Read]] = {}  # read_terragrunt_config targets evaluated
        self.memo: dict[tuple[Path, Any], _Memo] = {}  # (file, local or item) -> its evaluations
        self.exists_cache: dict[Path, tuple[bool, bool]] = {}  # path -> (exists, is a folder)
        self.resolved: dict[tuple[Path | None, str], Path] = {}
        self.found_up: dict[tuple[Path, str, Path | None], tuple[str | None, dict[str, bool]]] = {}
        self.exists_text: dict[str, bool] = {}  # what find_up probed: path -> exists
        self.parse_count = 0

    def preload(self, path: Path, body: Body, digest: str) -> None:
        """Hand over a file parsed elsewhere (a worker process or the cache)."""
        self.bodies[path] = (body, digest)

    def body(self, path: Path, records: Records) -> Body:
        """The parsed body of `path` (parsed at most once per run), recorded as read."""
        cached = self.bodies.get(path)
        if cached is None:
            data = read_bounded(path, shown=self.rel(path))  # no FIFO, device or huge file
            try:
                body = self._parse(path, data)
            except UnicodeDecodeError:
                raise ConfigError("not UTF-8 text", path=self.rel(path)) from None
            self.parse_count += 1
            cached = (body, hashlib.sha256(data).hexdigest())
            self.bodies[path] = cached
        records.files[str(path)] = cached[1]
        return cached[0]

    def exists(self, path: Path, records: Records, *, folders: bool = False) -> bool:
        """Whether a file (or, with `folders`, a file or folder) exists; recorded as a probe."""
        state = self.exists_cache.get(path)
        if state is None:
            text = str(path)
            state = (os.path.exists(text), os.path.isdir(text))
            self.exists_cache[path] = state
        records.probes[str(path)] = state[0]  # raw existence: what the cache re-checks
        return state[0] and (folders or not state[1])

    def find_up(self, start: Path, name: str, records: Records, stop: Path | None = None) -> str | None:
        """find_in_parent_folders: the first `name` (file or folder) in a folder above
        `start` (up to `stop`, inclusive, if given). Memoised per (start, name, stop) with
        the probes it made, which are recorded."""
        key = (start, name, stop)
        cached = self.found_up.get(key)
        if cached is None:
            probes: dict[str, bool] = {}
            result = None
            current = str(start)
            last = str(stop) if stop is not None else None
            while current != last:
                parent = os.path.dirname(current)
                if parent == current:
                    break
                current = parent
                candidate = os.path.join(current, name)
                exists = self.exists_text.get(candidate)
                if exists is None:  # siblings ask about the same folders above them
                    exists = self.exists_text[candidate] = os.path.exists(candidate)
                probes[candidate] = exists
                if exists:
                    result = os.path.normpath(candidate)
                    break
            cached = (result, probes)
            self.found_up[key] = cached
        records.probes.update(cached[1])
        return cached[0]

    def rel(self, path: Path) -> str:
        """A path for messages: relative to the repo root when inside it."""
        text = str(path)
        if text.startswith(self._root_prefix):
            rel = text[len(self._root_prefix) :]
            return rel.replace(os.sep, "/") if os.sep != "/" else rel
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return text

    def locals_of(self, path: Path, body: Body) -> dict[str, tuple[Expr, int]]:
        """The local expressions of a file (its locals blocks' attributes) by name."""
        found = self._locals.get(path)
        if found is None:
            found = self._locals[path] = {
                sub[1]: (sub[2], sub[3])
                for item in body
                if item[0] == "block" and item[1] == "locals"
                for sub in item[3]
                if sub[0] == "attr"
            }
        return found


class UnitContext:
    """Terragrunt's per-config state while one config (and its includes) is evaluated."""

    def __init__(
        self,
        loader: Loader,
        config_path: Path,
        *,
        original_dir: Path | None = None,
        outputs: Mapping[str, Mapping[str, Any]] | None = None,
        depth: int = 0,
        account_id: str | None = None,
    ) -> None:
        self.loader = loader
        # The account the unit runs in: refarch runs it with that account's credentials only
        # (the wrong-account guard), so it is what get_aws_account_id() returns.
        self.account_id = account_id
        self.config_path = config_path
        self.terragrunt_dir = config_path.parent
        self.original_dir = original_dir or self.terragrunt_dir
        self.outputs = outputs or {}
        self.depth = depth
        self.records = Records()
        self.includes: dict[str, Include] = {}
        self.dependency_blocks: dict[str, tuple[Scope, Body, int]] = {}
        self.dependency_definitions: dict[str, list[tuple[Scope, Body, int, str | None]]] = {}
        self.dependency_values: dict[str, dict[str, Any]] = {}
        self.resolving: set[str] = set()
        self.frames: list[tuple[Scope, list[tuple[Any, Any]]]] = []  # traces being recorded
        if depth > MAX_DEPTH:
            raise ConfigError(
                "read_terragrunt_config nests too deeply (a loop?)", path=loader.rel(config_path)
            )

    # -- the whole config ------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        """Evaluate the config file with its includes merged in, as Terragrunt would."""
        child = Scope(self, self.config_path, self.loader.body(self.config_path, self.records))
        for label, path, expose, strategy, line in child.include_blocks():
            if label in self.includes:
                raise ConfigError(f"two include blocks are labelled {label!r}", path=child.rel, line=line)
            include = Include(label, path, expose, strategy, line)
            self.includes[label] = include
            try:
                body = self.loader.body(path, self.records)
            except UnreadableFile as exc:
                raise ConfigError(f"include {label!r}: {exc}", path=child.rel, line=line) from None
            include.scope = Scope(self, path, body, include=include)
            if any(item[0] == "block" and item[1] == "include" for item in body):
                raise ConfigError(
                    "an included file has include blocks of its own; Terragrunt allows only "
                    "one level of include",
                    path=self.loader.rel(path),
                    hint=f"include that file directly from {child.rel}",
                )
        # A stack's generated terragrunt.autoinclude.hcl: merged onto the unit as a shallow
        # include would be, the autoinclude winning on a conflict (Terragrunt's stack autoinclude).
        auto_path = self.terragrunt_dir / AUTOINCLUDE_FILE
        auto = None
        if self.config_path.name == "terragrunt.hcl" and self.loader.exists(auto_path, self.records):
            auto = Scope(self, auto_path, self.loader.body(auto_path, self.records))
        for scope in [child, *(inc.scope for inc in self.includes.values()), *([auto] if auto else [])]:
            assert scope is not None
            scope.check_source_independent()
        # Dependency blocks of the included files, then the child's own. Each name is folded
        # as Terragrunt folds it (handleIncludeForDependency): from the child up to the first
        # include, a shallow include giving way to what is below it, a deep one deep-merged.
        merging = [inc for inc in self.includes.values() if inc.merge_strategy != "no_merge"]
        sources: list[tuple[Scope | None, str | None]] = [(inc.scope, inc.merge_strategy) for inc in merging]
        for scope, how in [*sources, (child, None), *([(auto, None)] if auto else [])]:
            assert scope is not None
            for name, definition in scope.dependency_blocks().items():
                self.dependency_blocks[name] = definition
                self.dependency_definitions.setdefault(name, []).append((*definition, how))

        generated: dict[str, Include] = {}
        for include in merging:
            for name in self.included_config(include).get("generate") or {}:
                if name in generated:
                    raise ConfigError(
                        f'generate "{name}" is defined by two included files '
                        f"({self.loader.rel(generated[name].path)} and "
                        f"{self.loader.rel(include.path)})",
                        path=child.rel,
                        line=include.line,
                        hint="rename one of the generate blocks, or drop one include",
                    )
                generated[name] = include
        # Terragrunt's handleInclude: the child merged onto the last include, that result onto
        # the one before, and so on, each step with the strategy of the include merged onto.
        own = child.config()
        merged = own
        for include in reversed(merging):
            config = self.included_config(include)
            clash = sorted(set(_generate_names(config)) & set(_generate_names(merged)))
            if clash and include.merge_strategy == "shallow":  # Terragrunt: DuplicatedGenerateBlocksError
                raise ConfigError(
                    f'generate "{clash[0]}" is defined both in {self.loader.rel(include.path)} and '
                    "in the config that includes it, and a shallow merge does not override it",
                    path=child.rel,
                    line=include.line,
                    hint='rename one of the blocks, or set merge_strategy = "deep" to override it',
                )
            merged = merge_configs(config, merged, include.merge_strategy)
        if auto is not None:
            merged = merge_configs(merged, auto.config(), "shallow")
        if self.dependency_blocks:
            merged["dependency"] = {
                name: self.dependency(name, line, scope)
                for name, (scope, _, line) in self.dependency_blocks.items()
            }
        merged["locals"] = own.get("locals", {})
        return merged

    def included_config(self, include: Include) -> dict[str, Any]:
        if include.config is None:
            assert include.scope is not None
            include.config = include.scope.config()
        return include.config

    # -- dependencies ------------------------------------------------------------------------
    def dependency(self, name: str, line: int, scope: Scope) -> dict[str, Any]:
        if name in self.dependency_values:
            return self.dependency_values[name]
        if name not in self.dependency_blocks:
            raise EvaluationError(
                f"there is no dependency block named {name!r}",
                path=scope.rel,
                line=line,
                hint=f'add dependency "{name}" {{ config_path = "..." }}',
            )
        if name in self.resolving:
            raise EvaluationError(f"dependency {name!r} refers to itself", path=scope.rel, line=line)
        self.resolving.add(name)
        value: dict[str, Any] | None = None
        for defining, body, _, strategy in reversed(self.dependency_definitions[name]):
            block = defining.block_value(body)
            if value is None:
                value = block
            elif strategy == "deep":
                value = deep_merge(block, value)
        assert value is not None
        self.resolving.discard(name)
        value["outputs"] = self.dependency_outputs(name, value)
        self.dependency_values[name] = value
        return value

    def dependency_outputs(self, name: str, block: dict[str, Any]) -> Any:
        if name in self.outputs:
            return dict(self.outputs[name])
        mocks = block.get("mock_outputs")
        if isinstance(mocks, dict):
            return mocks
        if as_bool(block.get("skip_outputs")):
            return {}
        return Unknown(f"dependency.{name}.outputs")

    # -- paths ---------------------------------------------------------------------------------
    def include_for(self, label: str | None, scope: Scope, line: int, function: str) -> Include | None:
        if scope.include is not None and label is None:
            return scope.include
        if label is not None:
            if label not in self.includes:
                raise EvaluationError(
                    f"no include block labelled {label!r}", path=scope.rel, line=line, function=function
                )
            return self.includes[label]
        if not self.includes:
            return None
        if len(self.includes) > 1:
            raise EvaluationError(
                f"{function}() needs the include's label when there are several includes",
                path=scope.rel,
                line=line,
                function=function,
                hint=f'call {function}("root"), naming the include block',
            )
        return next(iter(self.includes.values()))


class LazyMap:
    """A namespace (local, include, dependency) whose entries are evaluated when first used."""

    def __init__(self, name: str, getter: Callable[[str, int], Any], names: Callable[[], list[str]]):
        self.name = name
        self.getter = getter
        self.names = names

    def get(self, key: str, line: int) -> Any:
        return self.getter(key, line)

    def materialize(self, line: int) -> dict[str, Any]:
        return {key: self.getter(key, line) for key in self.names()}


class Scope:
    """One file being evaluated inside a UnitContext: its locals and its expressions."""

    def __init__(self, ctx: UnitContext, path: Path, body: Body, *, include: Include | None = None):
        self.ctx = ctx
        self.path = path
        self.body = body
        self.include = include
        self.rel = ctx.loader.rel(path)
        self.local_exprs = ctx.loader.locals_of(path, body)
        self.local_values: dict[str, Any] = {}
        self.local_traces: dict[str, tuple[Any, ...]] = {}
        self.local_busy: set[str] = set()
        self.namespaces: dict[str, Any] = {
            "local": LazyMap("local", self.local, lambda: list(self.local_exprs)),
            "include": LazyMap("include", self.exposed_include, self.exposed_names),
            "dependency": LazyMap(
                "dependency",
                lambda name, line: self.ctx.dependency(name, line, self),
                lambda: list(self.ctx.dependency_blocks),
            ),
            "feature": LazyMap("feature", self.feature, self.feature_names),
            "values": stack_values(self),
        }
        self.memoised = include is not None  # an included file: shared by the units including it
        self.answers: dict[Any, Any] = {}  # traced questions asked in this scope, and the answers
        if self.memoised:  # what its values read of the unit's context is part of their traces
            self.untraced = {name: self.namespaces[name] for name in TRACED_NAMESPACES}
            for name in TRACED_NAMESPACES:
                self.namespaces[name] = self._traced_namespace(self.untraced[name])

    # -- memoised evaluation (see the module docstring) ---------------------------------------
    def _traced_namespace(self, inner: LazyMap) -> LazyMap:
        def get(key: str, line: int) -> Any:
            return self.traced(("ns", inner.name, key), inner.get, key, line)

        def names() -> list[str]:
            return self.traced(("names", inner.name), inner.names)  # type: ignore[no-any-return]

        return LazyMap(inner.name, get, names)

    def traced(self, question: tuple[Any, ...], ask: Callable[..., Any], *args: Any) -> Any:
        """Ask the unit's context `question` (by calling `ask`), noted in the trace being
        recorded for this file, if any."""
        frames = self.ctx.frames
        if not (frames and frames[-1][0] is self):
            return ask(*args)
        answer: Any = _RAISED  # unless it answers
        try:
            answer = ask(*args)
        finally:
            frames[-1][1].append((question, answer))
            self._remember(question, answer)
        return answer

    def _remember(self, question: tuple[Any, ...], answer: Any) -> None:
        key = _question_key(question)
        if key is not None:
            self.answers[key] = answer

    def ask_again(self, question: tuple[Any, ...]) -> Any:
        """A traced question asked of this scope's context (`_RAISED` if it fails); each
        question is asked once per scope (the unit's context does not change meanwhile)."""
        key = _question_key(question)
        if key is not None and key in self.answers:
            return self.answers[key]
        try:
            if question[0] == "call":
                answer = TERRAGRUNT[question[1]](self, list(question[2]), 0)
            elif question[0] == "ns":
                answer = self.untraced[question[1]].get(question[2], 0)
            else:
                answer = self.untraced[question[1]].names()
        except (RefarchError, FunctionError):
            answer = _RAISED
        if key is not None:
            self.answers[key] = answer
        return answer

    def _follow(self, trace: tuple[Any, ...]) -> None:
        frames = self.ctx.frames
        if frames and frames[-1][0] is self:
            frames[-1][1].extend(trace)

    def memo(self, key: Any, compute: Callable[..., Any], *args: Any) -> tuple[Any, tuple[Any, ...]]:
        """`compute(*args)`, or the value an earlier unit's evaluation of this file gave when
        this unit's context answers its trace's questions alike; with the trace."""
        memo = self.ctx.loader.memo.get((self.path, key))
        if memo is None:
            memo = self.ctx.loader.memo[self.path, key] = _Memo()
        if memo.hits or memo.misses < MEMO_GIVE_UP:
            for index, (trace, value) in enumerate(memo.entries):
                if all(_same(self.ask_again(question), answer) for question, answer in trace):
                    memo.hits += 1
                    if index:
                        memo.entries.insert(0, memo.entries.pop(index))
                    self._follow(trace)
                    return value, trace
        frame: list[tuple[Any, Any]] = []
        self.ctx.frames.append((self, frame))
        try:
            value = compute(*args)
        finally:
            self.ctx.frames.pop()
            self._follow(tuple(frame))
        memo.misses += 1
        trace = _once_each(frame)
        if not isinstance(value, LazyMap):  # a namespace is bound to its scope: never shared
            memo.entries.insert(0, (trace, value))
            del memo.entries[MEMO_KEEP:]
        return value, trace

    def item(self, index: int, compute: Callable[..., Any], *args: Any) -> Any:
        """A top-level attribute or block's value (memoised in an included file)."""
        return self.memo(("item", index), compute, *args)[0] if self.memoised else compute(*args)

    # -- namespaces --------------------------------------------------------------------------
    def local(self, name: str, line: int) -> Any:
        if name in self.local_values:
            if self.memoised:
                self._follow(self.local_traces[name])
            return self.local_values[name]
        if name not in self.local_exprs:
            raise EvaluationError(
                f"local.{name} is not defined in this file",
                path=self.rel,
                line=line,
                hint="locals are per file; an included file's "
                "locals are reached through include.<label>.locals with expose = true",
            )
        if name in self.local_busy:
            raise EvaluationError(
                f"local.{name} refers to itself (a cycle among locals)", path=self.rel, line=line
            )
        self.local_busy.add(name)
        expr, _ = self.local_exprs[name]
        if self.memoised:
            value, self.local_traces[name] = self.memo(("local", name), self.eval, expr, {})
        else:
            value = self.eval(expr, {})
        self.local_busy.discard(name)
        self.local_values[name] = value
        return value

    def exposed_names(self) -> list[str]:
        return [label for label, inc in self.ctx.includes.items() if inc.expose]

    def exposed_include(self, label: str, line: int) -> Any:
        include = self.ctx.includes.get(label)
        if include is None and label in ("locals", "inputs") and "" in self.ctx.includes:
            include = self.ctx.includes[""]
            if include.expose:
                return self.ctx.included_config(include).get(label, {})
        if include is None or not include.expose:
            raise EvaluationError(
                f"include.{label} is not available",
                path=self.rel,
                line=line,
                hint=f'label an include block "{label}" and set expose = true in it',
            )
        return self.ctx.included_config(include)

    def feature_blocks(self) -> dict[str, Body]:
        return {item[2][0]: item[3] for item in self.all_files_blocks("feature") if item[2]}

    def all_files_blocks(self, kind: str) -> list[Any]:
        items = []
        for include in self.ctx.includes.values():
            if include.scope is not None:
                items += [i for i in include.scope.body if i[0] == "block" and i[1] == kind]
        return items + [i for i in self.body if i[0] == "block" and i[1] == kind]

    def feature_names(self) -> list[str]:
        return list(self.feature_blocks())

    def feature(self, name: str, line: int) -> Any:
        """A feature flag: its default, or the value `--feature name=value` / TG_FEATURE give
        (converted to a bool when the default is one, as Terragrunt does)."""
        blocks = self.feature_blocks()
        if name not in blocks:
            raise EvaluationError(f"there is no feature block named {name!r}", path=self.rel, line=line)
        value = self.block_value(blocks[name])
        if "default" not in value:
            raise EvaluationError(
                f'feature "{name}" has no default value',
                path=self.rel,
                line=line,
                hint="add default = ... to the feature block, as Terragrunt requires",
            )
        override = parse_features(self.get_env(FEATURE_ENV, None) or "").get(name)
        if override is not None and isinstance(value["default"], bool):
            if override.lower() not in ("true", "false", "1", "0"):
                raise EvaluationError(
                    f"feature {name} is a bool, not {override!r}",
                    path=self.rel,
                    line=line,
                    hint="use true or false",
                )
            value["value"] = override.lower() in ("true", "1")
        else:
            value["value"] = override if override is not None else value["default"]
        return value

    # -- structure -----------------------------------------------------------------------------
    def include_blocks(self) -> list[tuple[str, Path, bool, str, int]]:
        found = []
        for item in self.body:
            if item[0] != "block" or item[1] != "include":
                continue
            _, _, labels, body, line = item
            attrs = {sub[1]: sub for sub in body if sub[0] == "attr"}
            if "path" not in attrs:
                raise ConfigError(
                    "include block has no path",
                    path=self.rel,
                    line=line,
                    hint='add path = find_in_parent_folders("root.hcl")',
                )
            raw = self.eval(attrs["path"][2], {})
            if not isinstance(raw, str):
                raise EvaluationError(
                    f"include path must be a string, got {type_name(raw)}", path=self.rel, line=line
                )
            path = self.resolve_path(raw)
            if not self.ctx.loader.exists(path, self.ctx.records):
                raise ConfigError(f"included file {raw} does not exist", path=self.rel, line=line)
            expose = self.eval(attrs["expose"][2], {}) if "expose" in attrs else False
            strategy = self.eval(attrs["merge_strategy"][2], {}) if "merge_strategy" in attrs else "shallow"
            if strategy not in MERGE_STRATEGIES:
                raise ConfigError(
                    f"merge_strategy {strategy!r} is not one of {', '.join(MERGE_STRATEGIES)}",
                    path=self.rel,
                    line=line,
                )
            found.append((labels[0] if labels else "", path, as_bool(expose), strategy, line))
        return found

    def check_source_independent(self) -> None:
        """terraform.source may not refer to dependency.* (Terragrunt refuses it: the source is
        needed before any dependency is read), even when mock outputs would make it known."""
        for item in self.body:
            if item[0] == "block" and item[1] == "terraform":
                for sub in item[3]:
                    if sub[0] == "attr" and sub[1] == "source" and _refers_to(sub[2], "dependency"):
                        raise ConfigError(
                            "terraform.source cannot reference dependency outputs: the module "
                            "source must be known before dependencies are read",
                            path=self.rel,
                            line=sub[3],
                            hint="use a local, include or a read_terragrunt_config value instead",
                        )

    def dependency_blocks(self) -> dict[str, tuple[Scope, Body, int]]:
        blocks = {}
        for item in self.body:
            if item[0] == "block" and item[1] == "dependency":
                if len(item[2]) != 1:
                    raise ConfigError(
                        "a dependency block needs exactly one label (its name)", path=self.rel, line=item[4]
                    )
                blocks[item[2][0]] = (self, item[3], item[4])
        return blocks

    def config(self) -> dict[str, Any]:
        """Every top-level attribute and block of this file, evaluated."""
        result: dict[str, Any] = {}
        for index, item in enumerate(self.body):
            if item[0] == "attr":
                result[item[1]] = self.item(index, self.eval, item[2], {})
                continue
            _, kind, labels, body, line = item
            if kind == "locals":
                result["locals"] = {name: self.local(name, ln) for name, (_, ln) in self.local_exprs.items()}
            elif kind == "include":
                continue
            elif kind == "dependency" and self.include is not None:
                # An included file's own block, as exposed through include.<label>: the merged
                # one may be the child's, which can refer back to this one.
                own = self.block_value(body)
                own["outputs"] = self.ctx.dependency_outputs(labels[0], own)
                result.setdefault("dependency", {})[labels[0]] = own
            elif kind == "dependency":
                result.setdefault("dependency", {})[labels[0]] = self.ctx.dependency(labels[0], line, self)
            elif kind == "generate" and labels and labels[0] in result.get("generate", {}):
                raise ConfigError(
                    f'two generate blocks are named "{labels[0]}"',
                    path=self.rel,
                    line=line,
                    hint="give each generate block its own name",
                )
            elif kind == "feature":
                result.setdefault("feature", {})[labels[0]] = self.feature(labels[0], line)
            elif labels:
                result.setdefault(kind, {})[labels[0]] = self.item(index, self.block_value, body)
            else:
                result[kind] = self.item(index, self.block_value, body)
        return result

    def block_value(self, body: Body) -> dict[str, Any]:
        """A block as a map: attributes by name, sub-blocks by type (and label)."""
        value: dict[str, Any] = {}
        for item in body:
            if item[0] == "attr":
                value[item[1]] = self.eval(item[2], {})
            else:
                _, kind, labels, sub, _ = item
                if labels:
                    value.setdefault(kind, {})[labels[0]] = self.block_value(sub)
                elif kind in value:
                    existing = value[kind]
                    value[kind] = (
                        [*existing, self.block_value(sub)]
                        if isinstance(existing, list)
                        else [existing, self.block_value(sub)]
                    )
                else:
                    value[kind] = self.block_value(sub)
        return value

    def resolve_path(self, raw: str) -> Path:
        """A path from config: absolute, or relative to the unit's folder (as Terragrunt)."""
        key = (None if raw.startswith("/") else self.ctx.terragrunt_dir, raw)
        resolved = self.ctx.loader.resolved.get(key)
        if resolved is None:
            joined = os.path.join(self.ctx.terragrunt_dir, raw)  # an absolute raw path wins
            resolved = self.ctx.loader.resolved[key] = Path(os.path.normpath(joined))
        return resolved

    # -- expressions ---------------------------------------------------------------------------
    def eval(self, node: Expr, env: dict[str, Any]) -> Any:
        tag = node[0]
        if tag == "lit":
            return node[1]
        return _DISPATCH[tag](self, node, env)

    def value(self, node: Expr, env: dict[str, Any], line: int) -> Any:
        """Evaluate and materialize lazy namespaces (for values used whole)."""
        result = self.eval(node, env)
        if isinstance(result, LazyMap):
            return result.materialize(line)
        return result

    def error(self, message: str, line: int, **kw: Any) -> EvaluationError:
        return EvaluationError(message, path=self.rel, line=line or None, **kw)

    def get_env(self, name: str, default: str | None) -> str | None:
        value = self.ctx.loader.env.get(name)
        self.ctx.records.env[name] = value
        return value if value is not None else default


def _question_key(question: tuple[Any, ...]) -> Any:
    """A traced question as a dict key (None when its arguments are not hashable)."""
    key = (question[0], question[1], tuple(question[2])) if question[0] == "call" else question
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _once_each(trace: list[tuple[Any, Any]]) -> tuple[Any, ...]:
    """A trace with each question once (a value that reads two locals asks what both asked)."""
    seen: set[Any] = set()
    kept = []
    for question, answer in trace:
        key = _question_key(question)
        if key is None or key not in seen:
            kept.append((question, answer))
            if key is not None:
                seen.add(key)
    return tuple(kept)


def _same(now: Any, then: Any) -> bool:
    """The same answer to a traced question: equal, and of the same type (1 is not true)."""
    return now is then or (type(now) is type(then) and bool(now == then))


def _refers_to(node: Any, name: str) -> bool:
    """True when the expression reads the variable `name` anywhere (syntactically)."""
    if isinstance(node, tuple):
        if len(node) > 1 and node[0] == "var" and node[1] == name:
            return True
        return any(_refers_to(child, name) for child in node)
    return False


def _ev_tmpl(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    parts = node[1]
    if len(parts) == 1 and not isinstance(parts[0], str) and parts[0][0] not in ("tif", "tfor"):
        # HCL: a template that is one interpolation only is that value, not converted to a string
        return scope.value(parts[0], env, node[2])
    return _render(scope, parts, env, node[2])


def _render(scope: Scope, parts: tuple[Any, ...], env: dict[str, Any], line: int) -> Any:
    """A template's parts as a string (or Unknown): literals, ${...}, %{if} and %{for}."""
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        if part[0] in ("tif", "tfor"):
            rendered = _render_directive(scope, part, env)
            if isinstance(rendered, Unknown):
                return rendered
            out.append(rendered)
            continue
        value = scope.value(part, env, line)
        if isinstance(value, Unknown):
            return value
        if isinstance(value, bool):
            out.append("true" if value else "false")
        elif isinstance(value, int | float):
            out.append(str(int(value)) if isinstance(value, float) and value.is_integer() else str(value))
        elif isinstance(value, str):
            out.append(value)
        elif value is None:
            raise scope.error("cannot interpolate a null value", line)
        else:
            raise scope.error(
                f"cannot interpolate a {type_name(value)} into a string; use jsonencode() or join()", line
            )
    return "".join(out)


def _render_directive(scope: Scope, part: tuple[Any, ...], env: dict[str, Any]) -> Any:
    if part[0] == "tif":
        _, cond, then, other, line = part
        truth = _truth(scope, scope.value(cond, env, line), line)
        if isinstance(truth, Unknown):
            return truth
        return _render(scope, then if truth else other, env, line)
    _, key_var, value_var, collection, body, line = part
    pairs = _iterate(scope, ("for", key_var, value_var, collection), env, line)
    if isinstance(pairs, Unknown):
        return pairs
    out = []
    for key, item in pairs:
        inner = {**env, value_var: item}
        if key_var:
            inner[key_var] = key
        rendered = _render(scope, body, inner, line)
        if isinstance(rendered, Unknown):
            return rendered
        out.append(rendered)
    return "".join(out)


def _ev_var(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    name = node[1]
    if name in env:
        return env[name]
    if name in scope.namespaces:
        return scope.namespaces[name]
    if name == "var":
        raise scope.error(
            "var.* is not available in Terragrunt configuration", node[2], hint="use local.* or inputs"
        )
    raise scope.error(
        f"unknown name {name!r}",
        node[2],
        hint="Terragrunt configs can use local.*, include.*, dependency.* and feature.*",
    )


def _get(scope: Scope, obj: Any, key: Any, line: int, what: str) -> Any:
    if isinstance(obj, LazyMap):
        return obj.get(str(key), line)
    if isinstance(obj, Unknown):
        return Unknown(f"{obj.reason}.{key}" if isinstance(key, str) else f"{obj.reason}[{key}]")
    if isinstance(key, Unknown):
        return key
    if isinstance(obj, dict):
        if isinstance(key, str | int) and str(key) in obj:
            return obj[str(key)]
        raise scope.error(f"{what} has no key {key!r}", line)
    if isinstance(obj, list):
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise scope.error(f"a list index must be a number, got {key!r}", line) from None
        if 0 <= index < len(obj):
            return obj[index]
        raise scope.error(f"index {index} is out of range (the list has {len(obj)} items)", line)
    raise scope.error(f"cannot look up {key!r} in a {type_name(obj)} value", line)


def _describe(node: Expr) -> str:
    if node[0] == "var":
        return str(node[1])
    if node[0] == "attr":
        return f"{_describe(node[1])}.{node[2]}"
    return "the value"


def _ev_attr(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    return _get(scope, scope.eval(node[1], env), node[2], node[3], _describe(node[1]))


def _ev_index(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    key = scope.value(node[2], env, node[3])
    return _get(scope, scope.eval(node[1], env), key, node[3], _describe(node[1]))


def _ev_splat(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    base = scope.value(node[1], env, node[3])
    if isinstance(base, Unknown):
        return base
    items = base if isinstance(base, list) else [] if base is None else [base]
    out = []
    for item in items:
        element = item
        for op in node[2]:
            key = op[1] if op[0] == "attr" else scope.value(op[1], env, node[3])
            element = _get(scope, element, key, node[3], "splat element")
        out.append(element)
    return out


def _ev_paren(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    return scope.eval(node[1], env)


def _ev_tuple(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    return [scope.value(item, env, 0) for item in node[1]]


def _ev_object(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    result: dict[str, Any] = {}
    for key_node, value_node in node[1]:
        key = key_node[1] if key_node[0] == "key" else scope.value(key_node, env, 0)
        if isinstance(key, Unknown):
            return Unknown("an object with an unknown key")
        if isinstance(key, bool | int | float):
            key = _ev_tmpl(scope, ("tmpl", (("lit", key),), 0), env)
        if not isinstance(key, str):
            raise scope.error(f"an object key must be a string, got {type_name(key)}", 0)
        result[key] = scope.value(value_node, env, 0)
    return result


def _truth(scope: Scope, value: Any, line: int) -> bool | Unknown:
    if isinstance(value, bool):
        return value
    if isinstance(value, Unknown):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise scope.error(f"a condition must be a bool, got {type_name(value)} {value!r}", line)


def _ev_cond(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    cond = _truth(scope, scope.value(node[1], env, node[4]), node[4])
    if isinstance(cond, Unknown):
        return cond
    return scope.eval(node[2] if cond else node[3], env)


def _number(scope: Scope, value: Any, line: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise scope.error(f"expected a number, got {type_name(value)}", line)
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            raise scope.error(f"expected a number, got string {value!r}", line) from None
    return value


def _ev_bin(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    op, line = node[1], node[4]
    left = scope.value(node[2], env, line)
    if op in ("&&", "||"):
        lt = _truth(scope, left, line)
        if lt is (op == "||"):
            return lt
        right = _truth(scope, scope.value(node[3], env, line), line)
        if isinstance(lt, Unknown) or isinstance(right, Unknown):
            return Unknown(f"a condition ({op})")
        return right
    right = scope.value(node[3], env, line)
    if isinstance(left, Unknown) or isinstance(right, Unknown):
        return left if isinstance(left, Unknown) else right
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    a, b = _number(scope, left, line), _number(scope, right, line)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op in ("/", "%"):
        if b == 0:
            raise scope.error("division by zero", line)
        result = a / b if op == "/" else a % b
        return int(result) if isinstance(result, float) and result.is_integer() else result
    return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


def _ev_un(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    value = scope.value(node[2], env, node[3])
    if isinstance(value, Unknown):
        return value
    if node[1] == "!":
        truth = _truth(scope, value, node[3])
        return truth if isinstance(truth, Unknown) else not truth
    return -_number(scope, value, node[3])


def _iterate(scope: Scope, node: Expr, env: dict[str, Any], line: int) -> Any:
    collection = scope.value(node[3], env, line)
    if isinstance(collection, Unknown):
        return collection
    if isinstance(collection, dict):
        return [(k, collection[k]) for k in sorted(collection)]
    if isinstance(collection, list):
        return list(enumerate(collection))
    raise scope.error(f"a for expression needs a list or map, got {type_name(collection)}", line)


def _ev_for_t(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    _, key_var, value_var, _, value_node, cond, line = node
    pairs = _iterate(scope, node, env, line)
    if isinstance(pairs, Unknown):
        return pairs
    out = []
    for key, item in pairs:
        inner = {**env, value_var: item}
        if key_var:
            inner[key_var] = key
        if cond is not None and _truth(scope, scope.value(cond, inner, line), line) is not True:
            continue
        out.append(scope.value(value_node, inner, line))
    return out


def _ev_for_o(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    _, key_var, value_var, _, key_node, value_node, grouped, cond, line = node
    pairs = _iterate(scope, node, env, line)
    if isinstance(pairs, Unknown):
        return pairs
    out: dict[str, Any] = {}
    for key, item in pairs:
        inner = {**env, value_var: item}
        if key_var:
            inner[key_var] = key
        if cond is not None and _truth(scope, scope.value(cond, inner, line), line) is not True:
            continue
        new_key = scope.value(key_node, inner, line)
        if not isinstance(new_key, str | int | float) or isinstance(new_key, bool):
            raise scope.error(f"a for expression key must be a string, got {type_name(new_key)}", line)
        new_key = str(new_key)
        new_value = scope.value(value_node, inner, line)
        if grouped:
            out.setdefault(new_key, []).append(new_value)
        elif new_key in out:
            raise scope.error(f"duplicate key {new_key!r} in a for expression (use ... to group)", line)
        else:
            out[new_key] = new_value
    return out


def _ev_call(scope: Scope, node: Expr, env: dict[str, Any]) -> Any:
    _, name, arg_nodes, expand, line = node
    if name in ("try", "can"):
        return _try_can(scope, name, arg_nodes, env, line)
    args = [scope.value(a, env, line) for a in arg_nodes]
    if expand and args:
        last = args.pop()
        if isinstance(last, Unknown):
            return last
        if not isinstance(last, list):
            raise scope.error(f"... expands a list, got {type_name(last)}", line, function=name)
        args.extend(last)
    handler = TERRAGRUNT.get(name)
    try:
        if handler is not None:
            if scope.memoised:
                return scope.traced(("call", name, list(args)), handler, scope, args, line)
            return handler(scope, args, line)
        if name in PURE:
            return call_pure(name, args)
    except FunctionError as exc:
        raise scope.error(f"{name}(): {exc}", line, function=name) from None
    if name in OPAQUE:
        return Unknown(f"{name}(...)")
    raise scope.error(
        f"function {name}() is not supported by refarch",
        line,
        function=name,
        hint="see the README's list of supported functions, or open an issue",
    )


def _try_can(scope: Scope, name: str, arg_nodes: tuple[Expr, ...], env: dict[str, Any], line: int) -> Any:
    if name == "can":
        if len(arg_nodes) != 1:
            raise scope.error("can() takes exactly one argument", line, function="can")
        try:
            value = scope.value(arg_nodes[0], env, line)
        except EvaluationError:
            return False
        return value if isinstance(value, Unknown) else True
    for arg in arg_nodes:
        try:
            return scope.value(arg, env, line)
        except EvaluationError:
            continue
    raise scope.error("try(): no argument could be evaluated", line, function="try")


_DISPATCH: dict[str, Callable[[Scope, Expr, dict[str, Any]], Any]] = {
    "tmpl": _ev_tmpl,
    "var": _ev_var,
    "attr": _ev_attr,
    "index": _ev_index,
    "splat": _ev_splat,
    "paren": _ev_paren,
    "tuple": _ev_tuple,
    "object": _ev_object,
    "cond": _ev_cond,
    "bin": _ev_bin,
    "un": _ev_un,
    "for_t": _ev_for_t,
    "for_o": _ev_for_o,
    "call": _ev_call,
    "key": lambda scope, node, env: node[1],
}


# -- Terragrunt context functions ------------------------------------------------------------
def _args(scope: Scope, args: list[Any], low: int, high: int, line: int, name: str) -> None:
    if not low <= len(args) <= high:
        raise scope.error(f"{name}() takes {low}-{high} arguments, got {len(args)}", line, function=name)


def _label(scope: Scope, args: list[Any], line: int, name: str) -> str | None:
    _args(scope, args, 0, 1, line, name)
    if args and not isinstance(args[0], str):
        raise scope.error(f"{name}() takes an include label (a string)", line, function=name)
    return args[0] if args else None


def tg_find_in_parent_folders(scope: Scope, args: list[Any], line: int) -> Any:
    _args(scope, args, 0, 2, line, "find_in_parent_folders")
    name = args[0] if args else "terragrunt.hcl"
    if not isinstance(name, str):
        raise scope.error(
            "find_in_parent_folders() takes a file name", line, function="find_in_parent_folders"
        )
    found = scope.ctx.loader.find_up(scope.ctx.terragrunt_dir, name, scope.ctx.records)
    if found is not None:
        return found
    if len(args) == 2:
        return args[1]
    raise scope.error(
        f"find_in_parent_folders(): no {name} in any folder above "
        f"{scope.ctx.loader.rel(scope.ctx.config_path.parent)}",
        line,
        function="find_in_parent_folders",
        hint=f"create {name} higher up, or pass a fallback as the second argument",
    )


def tg_read_terragrunt_config(scope: Scope, args: list[Any], line: int) -> Any:
    _args(scope, args, 1, 2, line, "read_terragrunt_config")
    if isinstance(args[0], Unknown):
        return args[0]
    if not isinstance(args[0], str):
        raise scope.error("read_terragrunt_config() takes a path", line, function="read_terragrunt_config")
    path = scope.resolve_path(args[0])
    loader = scope.ctx.loader
    if not loader.exists(path, scope.ctx.records):
        if len(args) == 2:
            return args[1]
        raise scope.error(
            f"read_terragrunt_config(): {args[0]} does not exist", line, function="read_terragrunt_config"
        )
    try:
        read = _read(loader, path, scope.ctx.original_dir, scope.ctx.depth + 1, scope.ctx.account_id)
    except UnreadableFile as exc:
        raise scope.error(
            f"read_terragrunt_config(): {exc}", line, function="read_terragrunt_config"
        ) from None
    scope.ctx.records.absorb(read.records)
    if read.view is None:  # one value per read, shared as every evaluated value is (never changed)
        read.view = with_terragrunt_defaults(read.config)
    return read.view


# What read_terragrunt_config() returns for what a file leaves out (Terragrunt's
# TerragruntConfigAsCty): these attributes are always there, empty strings when unset; a
# terraform, remote_state or dependency block has every field, null when unset.
ALWAYS_STRINGS = (
    "terraform_binary",
    "terraform_version_constraint",
    "terragrunt_version_constraint",
    "download_dir",
    "iam_role",
    "iam_assume_role_session_name",
    "iam_web_identity_token",
)
TERRAFORM_FIELDS = ("source", "include_in_copy", "exclude_from_copy", "copy_terraform_lock_file")
SUB_BLOCK_FIELDS = {
    "extra_arguments": ("arguments", "required_var_files", "optional_var_files", "env_vars", "commands"),
    "before_hook": ("if", "run_on_error", "suppress_stdout", "working_dir", "commands", "execute"),
    "after_hook": ("if", "run_on_error", "suppress_stdout", "working_dir", "commands", "execute"),
    "error_hook": ("suppress_stdout", "working_dir", "commands", "execute", "on_errors"),
}
REMOTE_STATE_DEFAULTS = {
    "disable_init": False,
    "disable_dependency_optimization": False,
    "generate": None,
    "encryption": None,
}
# A generate block as Terragrunt's GenerateConfig decodes it.
GENERATE_DEFAULTS = {
    "if_disabled": "skip",
    "comment_prefix": "# ",
    "disable_signature": False,
    "disable": False,
    "hcl_fmt": None,
    "mutable": None,
}
DEPENDENCY_FIELDS = (
    "config_path",
    "enabled",
    "skip_outputs",
    "mock_outputs",
    "mock_outputs_allowed_terraform_commands",
    "mock_outputs_merge_with_state",
    "mock_outputs_merge_strategy_with_state",
)


def with_terragrunt_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A config as read_terragrunt_config returns it: Terragrunt's defaults filled in, so
    `cfg.iam_role` or `cfg.terraform.extra_arguments` work on a file that does not set them."""
    result = dict.fromkeys(ALWAYS_STRINGS, "") | config
    terraform = result.get("terraform")
    if isinstance(terraform, dict):
        filled = dict.fromkeys(TERRAFORM_FIELDS) | terraform
        for kind, fields in SUB_BLOCK_FIELDS.items():
            blocks = _as_map(filled.get(kind))
            filled[kind] = {
                name: dict.fromkeys(fields) | {"name": name} | (b if isinstance(b, dict) else {})
                for name, b in blocks.items()
            }
        result["terraform"] = filled
    remote = result.get("remote_state")
    if isinstance(remote, dict):
        result["remote_state"] = REMOTE_STATE_DEFAULTS | remote
    generate = result.get("generate")
    if isinstance(generate, dict):
        result["generate"] = {
            name: GENERATE_DEFAULTS | (g if isinstance(g, dict) else {}) for name, g in generate.items()
        }
    dependencies = result.get("dependency")
    if isinstance(dependencies, dict):
        result["dependency"] = {
            name: dict.fromkeys(DEPENDENCY_FIELDS) | {"name": name} | (d if isinstance(d, dict) else {})
            for name, d in dependencies.items()
        }
    return result


def read_config(
    loader: Loader, path: Path, original_dir: Path, depth: int = 1, account_id: str | None = None
) -> tuple[dict[str, Any], Records]:
    """Evaluate another config file as read_terragrunt_config does: in its own folder's
    context. The result is shared by every read of the same file in this run that gives the
    parts of the reader's context it consulted (get_original_terragrunt_dir, the account of
    get_aws_account_id) the same values: most files are evaluated once."""
    read = _read(loader, path, original_dir, depth, account_id)
    return read.config, read.records


class _Read:
    """A read_terragrunt_config target evaluated: for which values of the reader's context
    facets it consulted, its config, what it consulted, and the value the function gives."""

    __slots__ = ("config", "facets", "records", "used", "view")

    def __init__(self, facets: dict[str, Any], config: dict[str, Any], records: Records) -> None:
        self.used = frozenset(records.context)
        self.facets = facets
        self.config = config
        self.records = records
        self.view: dict[str, Any] | None = None


def _read(loader: Loader, path: Path, original_dir: Path, depth: int, account_id: str | None) -> _Read:
    facets = {"original_dir": original_dir, "account_id": account_id}
    for read in loader.reads.get(path, ()):
        if all(read.facets[facet] == facets[facet] for facet in read.used):
            return read
    ctx = UnitContext(loader, path, original_dir=original_dir, depth=depth, account_id=account_id)
    read = _Read(facets, ctx.evaluate(), ctx.records)
    loader.reads.setdefault(path, []).append(read)
    return read


def _named_include(scope: Scope, args: list[Any], line: int, function: str) -> Include | None:
    """The include a path function refers to: its label argument, or the only include."""
    return scope.ctx.include_for(_label(scope, args, line, function), scope, line, function)


def _relative(target: Path, base: Path) -> str:
    """os.path.relpath in POSIX form, without its system calls when one folder holds the other."""
    to, start = str(target), str(base)
    if to == start:
        return "."
    if os.sep == "/" and to.startswith(start.rstrip("/") + "/"):
        return to[len(start.rstrip("/")) + 1 :]
    if os.sep == "/" and start.startswith(to.rstrip("/") + "/"):
        return "/".join([".."] * start[len(to.rstrip("/")) + 1 :].count("/") + [".."])
    return Path(os.path.relpath(target, base)).as_posix()


def tg_path_relative_to_include(scope: Scope, args: list[Any], line: int) -> Any:
    include = _named_include(scope, args, line, "path_relative_to_include")
    if include is None:
        return "."
    return _relative(scope.ctx.terragrunt_dir, include.path.parent)


def tg_path_relative_from_include(scope: Scope, args: list[Any], line: int) -> Any:
    include = _named_include(scope, args, line, "path_relative_from_include")
    if include is None:
        return "."
    return _relative(include.path.parent, scope.ctx.terragrunt_dir)


def tg_get_parent_terragrunt_dir(scope: Scope, args: list[Any], line: int) -> Any:
    include = _named_include(scope, args, line, "get_parent_terragrunt_dir")
    return str(include.path.parent if include else scope.ctx.terragrunt_dir)


def tg_get_original_terragrunt_dir(scope: Scope, args: list[Any], line: int) -> Any:
    scope.ctx.records.context.add("original_dir")
    return str(scope.ctx.original_dir)


def tg_get_env(scope: Scope, args: list[Any], line: int) -> Any:
    _args(scope, args, 1, 2, line, "get_env")
    if not isinstance(args[0], str):
        raise scope.error("get_env() takes a variable name", line, function="get_env")
    value = scope.get_env(args[0], args[1] if len(args) == 2 else None)
    if value is None:
        raise scope.error(
            f"get_env(): environment variable {args[0]} is not set",
            line,
            function="get_env",
            hint=f"export {args[0]}=... or pass a default",
        )
    return value


def tg_get_aws_account_id(scope: Scope, args: list[Any], line: int) -> Any:
    scope.ctx.records.context.add("account_id")
    if scope.ctx.account_id is not None:
        return scope.ctx.account_id
    getter = scope.ctx.loader.aws_account_id
    return getter() if getter else Unknown("get_aws_account_id()")


def _repo_root(scope: Scope, line: int, name: str) -> Path:
    current = scope.ctx.terragrunt_dir
    for folder in (current, *current.parents):
        if (folder / ".git").exists():
            return folder
    raise scope.error(
        f"{name}(): {scope.ctx.loader.rel(current)} is not inside a git repository", line, function=name
    )


def tg_fileexists(scope: Scope, args: list[Any], line: int) -> Any:
    _args(scope, args, 1, 1, line, "fileexists")
    return scope.ctx.loader.exists(scope.resolve_path(str(args[0])), scope.ctx.records)


def _read_file(scope: Scope, raw: Any, line: int, name: str) -> bytes:
    """A file a function reads (relative to the unit's folder), recorded for the cache."""
    if not isinstance(raw, str):
        raise scope.error(f"{name}() takes a path, got {type_name(raw)}", line, function=name)
    path = scope.resolve_path(raw)
    try:
        data = read_bounded(path)  # a FIFO, a device or a huge file is refused, never waited on
    except UnreadableFile as exc:
        why = exc.detail.removeprefix("cannot read: ")
        raise scope.error(f"{name}(): cannot read {raw}: {why}", line, function=name) from None
    scope.ctx.records.files[str(path)] = hashlib.sha256(data).hexdigest()
    return data


def _text(scope: Scope, data: bytes, line: int, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise scope.error(f"{name}(): the file is not UTF-8 text", line, function=name) from None


def tg_file(name: str, convert: Callable[[bytes], str] | None) -> Callable[[Scope, list[Any], int], Any]:
    """file(), filebase64() and the file hash functions: the file's bytes, converted."""

    def call(scope: Scope, args: list[Any], line: int) -> Any:
        _args(scope, args, 1, 1, line, name)
        if isinstance(args[0], Unknown):
            return args[0]
        data = _read_file(scope, args[0], line, name)
        return _text(scope, data, line, name) if convert is None else convert(data)

    return call


def tg_templatefile(scope: Scope, args: list[Any], line: int) -> Any:
    _args(scope, args, 2, 2, line, "templatefile")
    if isinstance(args[0], Unknown) or isinstance(args[1], Unknown):
        return Unknown("templatefile(...)")
    if not isinstance(args[1], dict):
        raise scope.error("templatefile() takes a map of variables", line, function="templatefile")
    text = _text(scope, _read_file(scope, args[0], line, "templatefile"), line, "templatefile")
    parts = tuple(split_template(text, scope.rel, line))
    return _render(scope, parts, dict(args[1]), line)


def tg_fileset(scope: Scope, args: list[Any], line: int) -> Any:
    _args(scope, args, 2, 2, line, "fileset")
    if not all(isinstance(a, str) for a in args):
        raise scope.error("fileset() takes a folder and a pattern", line, function="fileset")
    base = scope.resolve_path(args[0])
    return sorted(p.relative_to(base).as_posix() for p in base.glob(args[1]) if p.is_file())


def tg_mark_as_read(scope: Scope, args: list[Any], line: int) -> Any:
    _args(scope, args, 1, 1, line, "mark_as_read")
    return args[0]


def tg_mark_glob_as_read(scope: Scope, args: list[Any], line: int) -> Any:
    """mark_glob_as_read([--terragrunt-boundary DIR,] PATTERN): the files the glob matches
    (absolute paths), recorded as read. The boundary is accepted and not enforced."""
    if args and isinstance(args[0], str) and args[0].startswith("--"):
        args = args[1:] if "=" in args[0] else args[2:]
    _args(scope, args, 1, 1, line, "mark_glob_as_read")
    if not isinstance(args[0], str):
        raise scope.error("mark_glob_as_read() takes a glob pattern", line, function="mark_glob_as_read")
    pattern = str(scope.resolve_path(args[0]))
    # an absolute pattern, which Path.glob does not take
    found = sorted(p for p in globlib.glob(pattern, recursive=True) if os.path.isfile(p))  # noqa: PTH207
    for path in found:
        _read_file(scope, path, line, "mark_glob_as_read")
    return found


def tg_read_tfvars_file(scope: Scope, args: list[Any], line: int) -> Any:
    """read_tfvars_file(path): the variables of a .tfvars (or .tfvars.json) file as a JSON
    string, as Terragrunt returns them (use jsondecode() to get the map)."""
    _args(scope, args, 1, 1, line, "read_tfvars_file")
    if isinstance(args[0], Unknown):
        return args[0]
    text = _text(scope, _read_file(scope, args[0], line, "read_tfvars_file"), line, "read_tfvars_file")
    path = str(args[0])
    if path.endswith(".json"):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise scope.error(
                f"read_tfvars_file(): {path}: {exc.msg}", line, function="read_tfvars_file"
            ) from None
    else:
        body = parse_text(text, path)
        values = {item[1]: scope.value(item[2], {}, item[3]) for item in body if item[0] == "attr"}
    return json.dumps(values, separators=(",", ":"), sort_keys=True)


def tg_get_working_dir(scope: Scope, args: list[Any], line: int) -> Any:
    """The folder Terraform runs in: the unit's own without a source; with one, refarch's
    working copy, which exists only at run time."""
    for item in scope.body:
        if item[0] == "block" and item[1] == "terraform" and any(s[1] == "source" for s in item[3]):
            return Unknown("get_working_dir()")
    return str(scope.ctx.terragrunt_dir)


def tg_get_aws_account_alias(scope: Scope, args: list[Any], line: int) -> Any:
    getter = scope.ctx.loader.aws_account_alias
    return getter() if getter else Unknown("get_aws_account_alias()")


def tg_get_terragrunt_source_cli_flag(scope: Scope, args: list[Any], line: int) -> Any:
    return scope.get_env("TG_SOURCE", None) or scope.get_env("TERRAGRUNT_SOURCE", None) or ""


TERRAGRUNT: dict[str, Callable[[Scope, list[Any], int], Any]] = {
    "file": tg_file("file", None),
    "filebase64": tg_file("filebase64", lambda data: base64.b64encode(data).decode()),
    "filemd5": tg_file("filemd5", lambda data: hashlib.md5(data).hexdigest()),  # noqa: S324 - Terraform's
    "filesha1": tg_file("filesha1", lambda data: hashlib.sha1(data).hexdigest()),  # noqa: S324 - Terraform's
    "filesha256": tg_file("filesha256", lambda data: hashlib.sha256(data).hexdigest()),
    "filesha512": tg_file("filesha512", lambda data: hashlib.sha512(data).hexdigest()),
    "filebase64sha256": tg_file(
        "filebase64sha256", lambda d: base64.b64encode(hashlib.sha256(d).digest()).decode()
    ),
    "filebase64sha512": tg_file(
        "filebase64sha512", lambda d: base64.b64encode(hashlib.sha512(d).digest()).decode()
    ),
    "templatefile": tg_templatefile,
    "fileset": tg_fileset,
    "mark_as_read": tg_mark_as_read,
    "mark_glob_as_read": tg_mark_glob_as_read,
    "read_tfvars_file": tg_read_tfvars_file,
    "get_working_dir": tg_get_working_dir,
    "get_aws_account_alias": tg_get_aws_account_alias,
    "get_terragrunt_source_cli_flag": tg_get_terragrunt_source_cli_flag,
    "get_default_retryable_errors": lambda s, a, ln: list(TERRAGRUNT_RETRYABLE_ERRORS),
    "find_in_parent_folders": tg_find_in_parent_folders,
    "read_terragrunt_config": tg_read_terragrunt_config,
    "path_relative_to_include": tg_path_relative_to_include,
    "path_relative_from_include": tg_path_relative_from_include,
    "get_terragrunt_dir": lambda s, a, ln: str(s.ctx.terragrunt_dir),
    "get_original_terragrunt_dir": tg_get_original_terragrunt_dir,
    "get_parent_terragrunt_dir": tg_get_parent_terragrunt_dir,
    "get_env": tg_get_env,
    "get_aws_account_id": tg_get_aws_account_id,
    "get_terraform_command": lambda s, a, ln: s.ctx.loader.terraform_command,
    "get_terraform_cli_args": lambda s, a, ln: [],
    "get_terraform_commands_that_need_vars": lambda s, a, ln: [
        "apply",
        "console",
        "destroy",
        "import",
        "plan",
        "push",
        "refresh",
        "validate",
    ],
    "get_terraform_commands_that_need_input": lambda s, a, ln: ["apply", "import", "init", "plan", "refresh"],
    "get_terraform_commands_that_need_locking": lambda s, a, ln: [
        "apply",
        "destroy",
        "import",
        "init",
        "plan",
        "refresh",
        "taint",
        "untaint",
    ],
    "get_terraform_commands_that_need_parallelism": lambda s, a, ln: ["apply", "plan", "destroy"],
    "get_repo_root": lambda s, a, ln: str(_repo_root(s, ln, "get_repo_root")),
    "get_path_from_repo_root": lambda s, a, ln: Path(
        os.path.relpath(s.ctx.terragrunt_dir, _repo_root(s, ln, "get_path_from_repo_root"))
    ).as_posix(),
    "get_path_to_repo_root": lambda s, a, ln: Path(
        os.path.relpath(_repo_root(s, ln, "get_path_to_repo_root"), s.ctx.terragrunt_dir)
    ).as_posix(),
    "fileexists": tg_fileexists,
    "abspath": lambda s, a, ln: str(s.resolve_path(str(a[0]))) if a else "",
}


# -- values: what a terragrunt.stack.hcl gave a generated unit or nested stack ------------------
VALUES_FILE = "terragrunt.values.hcl"
AUTOINCLUDE_FILE = "terragrunt.autoinclude.hcl"  # written by a stack's `autoinclude` block


def stack_values(scope: Scope) -> LazyMap:
    """The `values` namespace, as Terragrunt sets it: the attributes of the
    terragrunt.values.hcl next to the config being evaluated (written there by `stack
    generate` from a `unit` or `stack` block's `values`), read when first used."""
    ctx = scope.ctx
    memo: list[dict[str, Any]] = []

    def load(line: int) -> dict[str, Any]:
        if not memo:
            path = ctx.terragrunt_dir / VALUES_FILE
            if not ctx.loader.exists(path, ctx.records):
                raise scope.error(
                    f"values.* is not available: there is no {VALUES_FILE} in "
                    f"{ctx.loader.rel(ctx.terragrunt_dir)}",
                    line,
                    hint="values come from a terragrunt.stack.hcl unit or stack block; "
                    "run `refarch stack generate` on the stack, and use the generated unit",
                )
            body = ctx.loader.body(path, ctx.records)
            file_scope = Scope(ctx, path, body)
            memo.append(
                {item[1]: file_scope.value(item[2], {}, item[3]) for item in body if item[0] == "attr"}
            )
        return memo[0]

    def get(key: str, line: int) -> Any:
        loaded = load(line)
        if key not in loaded:
            where = ctx.loader.rel(ctx.terragrunt_dir / VALUES_FILE)
            raise scope.error(f"values has no key {key!r} (see {where})", line)
        return loaded[key]

    return LazyMap("values", get, lambda: list(load(0)))


# -- merging included configs ----------------------------------------------------------------
def merge_configs(parent: dict[str, Any], child: dict[str, Any], strategy: str) -> dict[str, Any]:
    """Merge a child config onto an included (parent) config, as Terragrunt's Merge (shallow)
    and DeepMerge do: the child wins; `dependencies` paths always combine; `terraform` keeps
    extra_arguments and hooks by name; `remote_state` and `exclude` are replaced whole and `generate`,
    `dependency` and `feature` blocks go by name (deep merge merges the latter two);
    `inputs` go by top-level key (shallow) or recursively (deep)."""
    deep = strategy == "deep"
    result = dict(parent)
    for key, value in child.items():
        if key in NOT_MERGED or key not in result:
            result[key] = value
        elif key == "dependencies":
            result[key] = _merge_paths(_as_map(result[key]), _as_map(value))
        elif key == "terraform":
            result[key] = _merge_terraform(_as_map(result[key]), _as_map(value), deep)
        elif key in ("remote_state", "generate") or (key in BY_NAME | {"inputs"} and not deep):
            result[key] = value if key == "remote_state" else {**_as_map(result[key]), **_as_map(value)}
        elif key == "exclude":  # Terragrunt: the child's exclude block replaces the parent's, even deep
            result[key] = value
        elif deep:
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def _generate_names(config: dict[str, Any]) -> list[str]:
    return list(_as_map(config.get("generate")))


def _as_map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _merge_paths(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    paths = [*(parent.get("paths") or []), *(child.get("paths") or [])]
    return {**parent, **child, "paths": list(dict.fromkeys(p for p in paths if isinstance(p, str | Unknown)))}


def _merge_terraform(parent: dict[str, Any], child: dict[str, Any], deep: bool) -> dict[str, Any]:
    result = dict(parent)
    for key, value in child.items():
        if (
            isinstance(value, dict)
            and isinstance(result.get(key), dict)
            and key in ("extra_arguments", "before_hook", "after_hook", "error_hook")
        ):
            result[key] = {**result[key], **value}
        elif deep and key in ("include_in_copy", "exclude_from_copy") and isinstance(result.get(key), list):
            result[key] = [*result[key], *(value if isinstance(value, list) else [])]
        else:
            result[key] = value
    return result
