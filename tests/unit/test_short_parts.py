"""Issue 20, short parts: no function of the run layer, the jobs or the engines is over 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import refarch

LIMIT = 60  # lines, from the def line to the last line, docstring included
PACKAGES = ("runner", "jobs", "engines")


def _long_functions(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LIMIT:
                    found.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_of_the_runner_the_jobs_or_the_engines_is_over_60_lines():
    root = Path(refarch.__file__).parent
    long = [f"{package}/{where}" for package in PACKAGES for where in _long_functions(root / package)]
    assert not long, f"split these into named steps: {long}"
