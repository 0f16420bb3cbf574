"""Let a module be called like its main function: `refarch.plan(repo)`, `refarch.run(plan)`.

Rebinding `refarch.plan` to the function would hide the module (`import refarch.plan`,
`import refarch.run.process as p` would then fail), so the module itself becomes callable.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any


def make_callable(module_name: str, target: Callable[[], Callable[..., Any]]) -> None:
    """Calling the module `module_name` calls `target()` (resolved lazily, at call time)."""

    class CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return target()(*args, **kwargs)

    sys.modules[module_name].__class__ = CallableModule
