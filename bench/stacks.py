"""Stack generation benchmark: N copies of the example's stack (3 units each).

Prints the seconds `refarch.config.stacks.generate_stacks` takes the first time, again with
nothing changed (rendered, compared, left alone), and after one stack file changed, and what
walking a repo for stack files costs when it has none (what graph, plan and apply pay before
loading). Figures only; nothing is asserted.
Usage: python bench/stacks.py [N]   (default: 100)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from refarch.config.stacks import find_stack_files, generate_stacks

EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "stacks" / "example"
STACK = "live/non-prod/us-east-1/stateful-lambda-service"


def timed(label: str, function: Callable[[], object]) -> None:
    start = time.perf_counter()
    result = function()
    changed = getattr(result, "changed", None)
    note = "" if changed is None else f"  (changed: {changed})"
    print(f"{label:<44} {time.perf_counter() - start:7.2f} s{note}")


def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        example = Path(scratch) / "example"
        shutil.copytree(EXAMPLE, example)
        source = example / STACK
        for index in range(count):
            shutil.copytree(source, source.parent / f"service-{index:04d}")
        shutil.rmtree(source)
        shutil.rmtree(example / "live/prod")
        live = example / "live"
        print(f"{count} stack files, {3 * count} units")
        timed("generate (first time)", lambda: generate_stacks(live, env={}))
        timed("generate again (nothing changed)", lambda: generate_stacks(live, env={}))
        first = source.parent / "service-0000/terragrunt.stack.hcl"
        first.write_text(first.read_text().replace('hash_key      = "Id"', 'hash_key      = "Key"'))
        timed("generate after one stack file changed", lambda: generate_stacks(live, env={}))
        timed("find_stack_files (the walk before loading)", lambda: find_stack_files(live))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
