"""Record the AMI ids refarch built: `.refarch/amis.json` and the `amis.auto.hcl` units read.

The record is merged per build and both files are written atomically. Units read the ids from
`amis.auto.hcl` at the repo root (the fallbacks keep a repo loadable before its first build,
which matters because build_amis itself loads the repo):

    locals {
      amis = read_terragrunt_config(find_in_parent_folders("amis.auto.hcl", "amis.auto.hcl"),
                                    { locals = { ami_ids = {} } })
    }
    inputs = { ami_id = try(local.amis.locals.ami_ids["ecs-node"][local.aws_region], null) }
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from refarch.config.hcl import Expr, parse_text
from refarch.errors import ConfigError
from refarch.files import write_atomic

RECORD_FILE = Path(".refarch") / "amis.json"
AUTO_HCL = "amis.auto.hcl"
RECORD_VERSION = 1


class RecordedBuild(Protocol):
    """What the record keeps of one build (refarch.jobs.amis.AmiBuild)."""

    @property
    def template(self) -> str: ...

    @property
    def region(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


class AmiStore:
    """`.refarch/amis.json` and `amis.auto.hcl`: read, merged per build, written atomically.

    The record is the source of truth. Ids already in `amis.auto.hcl` that it does not know
    (the placeholders `refarch new` writes, or templates built elsewhere) are kept, so every
    unit that reads the file still finds its template and region.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / RECORD_FILE
        self.hcl_path = root / AUTO_HCL
        self._lock = threading.Lock()
        self.data = self._read()
        self.existing = read_auto_hcl(self.hcl_path)

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"version": RECORD_VERSION, "amis": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"cannot read the AMI record: {exc}",
                path=self.path,
                hint="fix or delete the file; the next build rewrites it",
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("amis"), dict):
            raise ConfigError(
                "the AMI record has no `amis` table",
                path=self.path,
                hint="fix or delete the file; the next build rewrites it",
            )
        return data

    def ids(self) -> dict[str, dict[str, str]]:
        """template -> region -> AMI id, sorted."""
        with self._lock:
            return {
                template: {region: str(entry["ami_id"]) for region, entry in sorted(by.items())}
                for template, by in sorted(self.data["amis"].items())
            }

    def add(self, build: RecordedBuild) -> None:
        """Record one build and rewrite both files (each with an atomic rename)."""
        with self._lock:
            self.data["amis"].setdefault(build.template, {})[build.region] = build.to_json()
            self.data["version"] = RECORD_VERSION
            text = json.dumps(self.data, indent=2, sort_keys=True) + "\n"
        merged = {t: dict(by) for t, by in self.existing.items()}
        for template, by in self.ids().items():
            merged.setdefault(template, {}).update(by)
        hcl = render_auto_hcl(merged)
        with self._lock:
            # ids, not secrets: readable like the rest of the repo
            write_atomic(self.path, text, mode=0o644)
            write_atomic(self.hcl_path, hcl, mode=0o644)


def read_auto_hcl(path: Path) -> dict[str, dict[str, str]]:
    """The `ami_ids` of an existing amis.auto.hcl (empty when there is none).

    The file is generated, so only literal maps of strings are accepted; anything else is a
    ConfigError naming the line, rather than being silently dropped on the next rewrite.
    """
    if not path.is_file():
        return {}
    for node in parse_text(path.read_text(encoding="utf-8"), str(path)):
        if node[0] != "block" or node[1] != "locals":
            continue
        for attr in node[3]:
            if attr[0] == "attr" and attr[1] == "ami_ids":
                ids = _literal(attr[2], path, attr[3])
                if not isinstance(ids, dict) or not all(
                    isinstance(by, dict) and all(isinstance(v, str) for v in by.values())
                    for by in ids.values()
                ):
                    raise ConfigError(
                        "ami_ids must map template -> region -> AMI id", path=path, line=attr[3]
                    )
                return ids
    return {}


def _literal(expr: Expr, path: Path, line: int) -> Any:
    """A literal string or object from the HCL AST; anything computed is refused."""
    tag = expr[0]
    if tag == "lit" and isinstance(expr[1], str):
        return expr[1]
    if tag == "tmpl" and all(isinstance(part, str) for part in expr[1]):
        return "".join(expr[1])
    if tag == "object":
        return {
            (key[1] if key[0] == "key" else _literal(key, path, line)): _literal(value, path, line)
            for key, value in expr[1]
        }
    raise ConfigError(
        "amis.auto.hcl is generated and may only hold literal AMI ids",
        path=path,
        line=line,
        hint="delete the file or restore its literal form; `refarch amis build` rewrites it",
    )


def render_auto_hcl(ids: Mapping[str, Mapping[str, str]]) -> str:
    """The `amis.auto.hcl` units read: `locals { ami_ids = { template = { region = id } } }`."""
    lines = [
        "# Generated by `refarch amis build` from .refarch/amis.json: do not edit.",
        "# A unit reads it with (see the README, section AMIs):",
        '#   amis = read_terragrunt_config(find_in_parent_folders("amis.auto.hcl", "amis.auto.hcl"),',
        "#                                 { locals = { ami_ids = {} } })",
        '#   ami_id = try(local.amis.locals.ami_ids["ecs-node"][local.aws_region], null)',
        "locals {",
        "  ami_ids = {",
    ]
    for template in sorted(ids):
        lines.append(f"    {json.dumps(template)} = {{")
        for region in sorted(ids[template]):
            lines.append(f"      {json.dumps(region)} = {json.dumps(ids[template][region])}")
        lines.append("    }")
    lines += ["  }", "}", ""]
    return "\n".join(lines)
