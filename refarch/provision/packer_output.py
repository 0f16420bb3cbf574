"""Read Packer's `-machine-readable` output: AMI ids, build errors, and the lines a person sees."""

from __future__ import annotations

import re
from collections.abc import Iterable

AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")


def unescape(field_text: str) -> str:
    """Undo Packer's machine-readable escaping: commas, newlines and carriage returns."""
    return field_text.replace("%!(PACKER_COMMA)", ",").replace("\\n", "\n").replace("\\r", "\r")


def split_line(line: str) -> tuple[str, str, tuple[str, ...]] | None:
    """`timestamp,target,type,data...` -> (target, type, data), or None for other lines."""
    fields = line.rstrip("\n").split(",")
    if len(fields) < 3 or not fields[0].isdigit():
        return None
    return fields[1], fields[2], tuple(unescape(f) for f in fields[3:])


def parse_artifact_ids(lines: Iterable[str]) -> dict[str, dict[str, str]]:
    """Build name -> {region: AMI id} from `artifact,<n>,id,<region>:<ami>,...` lines.

    An amazon-ebs artifact id lists one `region:ami` pair per region it was copied to,
    comma-separated (escaped as %!(PACKER_COMMA) on the line).
    """
    found: dict[str, dict[str, str]] = {}
    for line in lines:
        parsed = split_line(line)
        if parsed is None:
            continue
        target, kind, data = parsed
        if kind != "artifact" or len(data) < 3 or data[1] != "id":
            continue
        for pair in data[2].split(","):
            region, sep, ami = pair.strip().partition(":")
            if sep and AMI_ID.match(ami):
                found.setdefault(target, {})[region] = ami
    return found


def parse_errors(lines: Iterable[str]) -> list[str]:
    """The per-build error messages (`<build>,error,<message>`) Packer reports at the end."""
    errors = []
    for line in lines:
        parsed = split_line(line)
        if parsed and parsed[0] and parsed[1] == "error" and parsed[2]:
            errors.append(parsed[2][0].strip())
    return errors


def human_line(line: str) -> str | None:
    """The text a person would see for one machine-readable line (None: nothing to show)."""
    parsed = split_line(line)
    if parsed is None:
        return line.strip() or None
    _, kind, data = parsed
    if kind == "ui" and len(data) >= 2:
        return data[1].strip() or None
    return None
